"""The tolerance test of the label search: when is a restricted context "as good as" the full one?

Every criterion is a tiny strategy class: ``compare(root, candidate, view)`` returns (similar,
mean increase, largest guarded increase) of the output's negative log-likelihood. `Tolerance`
(``"mean+guard"``) is the base and needs only the scores; the others change which tokens the
guard looks at (`_guarded`) or add a test of their own (`_holds`), looking at the output's tokens
and the documents a candidate withholds (`TokenView`), and behave exactly like the base when no
view is given. The permissive propagator's default is ``"alone"`` (`DEFAULT_CRITERION`). Select
one by name with `Tolerance.named` (``ifc eval --criteria``). docs/calibration.md has the
measurements.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from ._checks import number
from ._errors import ConfigurationError, ConfigurationTypeError, ScoringError

__all__ = ["CRITERIA", "DEFAULT_CRITERION", "AloneGains", "AloneGuard", "ContentCopyGuard", "ContentGuard", "CopyGuard",
           "TokenView", "Tolerance", "alone_view", "content_mask", "default_tolerance", "token_view"]

Scores = Callable[[list[frozenset[str]]], Sequence[np.ndarray]]
_CHUNK = 8  # leave-one-in contexts per call to the scorer


class AloneGains:
    """Leave-one-in gains, scored on first use and kept: for each document, the per-token gain in
    log-probability of the output when it alone is shown, against no document. `of(ids)` scores
    the documents not yet scored (and the empty context), `_CHUNK` per call to `score` with
    `check` (the search's time budget) called between; a criterion asks only for the documents
    it needs, so a search in which no candidate that withholds a document passes the base test
    never pays for them. `sliced(keep)` shares the scores and sees only the output positions
    `keep` (a span's tokens)."""

    def __init__(self, score: Scores, ids: Sequence[str], keep: np.ndarray | None = None,
                 cache: dict[frozenset[str], np.ndarray] | None = None,
                 check: Callable[[], None] | None = None) -> None:
        self._score, self.ids, self._keep, self._check = score, tuple(ids), keep, check
        self._cache: dict[frozenset[str], np.ndarray] = {} if cache is None else cache  # by document set

    def of(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = [d for d in dict.fromkeys(ids) if d in self.ids]
        sets = [frozenset(), *(frozenset([d]) for d in wanted)]
        missing = [s for s in sets if s not in self._cache]
        for at in range(0, len(missing), _CHUNK):
            part = missing[at:at + _CHUNK]
            scores = [np.asarray(a, dtype=np.float64) for a in self._score(part)]
            if len(scores) != len(part):
                raise ScoringError(f"scores for {len(scores)} contexts, {len(part)} asked for")
            if not all(np.all(np.isfinite(a)) for a in scores):
                raise ScoringError("non-finite score from the model")
            self._cache.update(zip(part, scores))
            if self._check is not None:
                self._check()  # the search's time budget, between chunks
        none = self._cache[frozenset()]
        gains = {d: self._cache[frozenset([d])] - none for d in wanted}
        return gains if self._keep is None else {d: g[self._keep] for d, g in gains.items()}

    def sliced(self, keep: np.ndarray) -> AloneGains:
        keep = keep if self._keep is None else self._keep[keep]
        return AloneGains(self._score, self.ids, keep, self._cache, self._check)

    def checked(self, check: Callable[[], None]) -> AloneGains:
        """The same gains (shared scores), calling `check` after each chunk (it raises to stop)."""
        return AloneGains(self._score, self.ids, self._keep, self._cache, check)


@dataclass(frozen=True)
class TokenView:
    """What a criterion may look at besides the scores: the output's tokens and the documents.

    `pieces` are the output tokens as text; `doc_tokens` the token ids of each document's text;
    `withheld` the documents the candidate being judged leaves out (set per candidate); `alone`,
    for a criterion that asks for it (`Tolerance.needs_alone`), the leave-one-in gains of each
    document (`AloneGains`, scored on first use); `query_tokens` the tokens of the prompt outside
    the documents (the question and the template); `query_words` the words of the question
    (`words_of`), not of the template or a system prompt it adds. `masks`, set by `token_view`
    and kept by `sliced`: the content and new-content masks, read on the whole output (a span's
    tokens alone could cut a word).
    """

    output_ids: tuple[int, ...]
    pieces: tuple[str, ...]
    doc_tokens: Mapping[str, frozenset[int]]
    query_tokens: frozenset[int] = frozenset()
    withheld: frozenset[str] = frozenset()
    alone: AloneGains | None = None
    query_words: frozenset[str] = frozenset()
    masks: tuple[tuple[bool, ...], tuple[bool, ...]] | None = None

    def content(self) -> np.ndarray:
        """`content_mask` of the output."""
        return np.array(self.masks[0], dtype=bool) if self.masks else content_mask(self.pieces)

    def new_content(self) -> np.ndarray:
        """Mask of the output's content words (`content_mask`) that the question does not show as
        whole words (`words_of`, case aside): a digit of a date in the question does not excuse
        the same digit in a secret code. Number words, numbers of one or two digits and
        undecodable pieces are never excused, so a question that lists them ("zero one … nine")
        cannot switch the test off."""
        if self.masks:
            return np.array(self.masks[1], dtype=bool)
        return np.array(_masks(self.pieces, self.query_words)[1], dtype=bool)

    def with_masks(self) -> TokenView:
        """This view with its masks computed once (`masks`)."""
        return replace(self, masks=_masks(self.pieces, self.query_words))

    def sliced(self, keep: np.ndarray) -> TokenView:
        """The view of the output positions `keep` (a span's tokens), masks read on the whole output."""
        content, new = self.content()[keep], self.new_content()[keep]
        return replace(self, output_ids=tuple(self.output_ids[i] for i in keep),
                       pieces=tuple(self.pieces[i] for i in keep),
                       alone=None if self.alone is None else self.alone.sliced(keep),
                       masks=(tuple(bool(x) for x in content), tuple(bool(x) for x in new)))

    def for_withheld(self, withheld: frozenset[str]) -> TokenView:
        return replace(self, withheld=withheld)

    def copied_from_withheld(self) -> np.ndarray:
        """Mask of output tokens found in a withheld document and nowhere the candidate shows."""
        shown = set(self.query_tokens)
        hidden: set[int] = set()
        for doc, toks in self.doc_tokens.items():
            (hidden if doc in self.withheld else shown).update(toks)
        return np.array([t in hidden and t not in shown for t in self.output_ids], dtype=bool)


_FUNCTION_WORDS = frozenset(
    "a an and are as at be by for from has have he her his i in is it its of on or our she so that the "
    "their them there they this to was we were which who will with you your yes no".split())
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand million billion trillion dozen first second third fourth fifth sixth seventh eighth "
    "ninth tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
    "nineteenth twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth "
    "hundredth thousandth millionth".split())
# a word: letters and digits of any script (and U+FFFD, a piece of a character split across
# tokens), joined across one inner separator ("4,417", "2024-03-05", "Jean-Luc" are one word each)
_CH = r"(?:[^\W_]|\ufffd)"
_WORD = re.compile(rf"{_CH}+(?:[.,:/-]{_CH}+)*")
_SEP = re.compile(r"[.,:/-]")


def _words(pieces: Sequence[str]) -> list[tuple[str, range]]:
    """The output's words (`_WORD`, on the output's text) with the indices of the tokens each
    overlaps."""
    ends = np.cumsum([len(p) for p in pieces], dtype=int)
    starts = ends - np.array([len(p) for p in pieces], dtype=int)
    return [(m.group(), range(int(np.searchsorted(ends, m.start(), side="right")),
                              int(np.searchsorted(starts, m.end(), side="left"))))
            for m in _WORD.finditer("".join(pieces))]


def _number_word(part: str) -> bool:
    part = part.lower()
    return part in _NUMBER_WORDS or (part.endswith("s") and part[:-1] in _NUMBER_WORDS)


def _is_content(word: str) -> bool:
    """Digits, names (a part with a capital first letter, not a function word: "mid-March"),
    number words, and what this test cannot read: any letter without case (CJK, Arabic, …) or an
    undecodable piece."""
    if any(ch.isdigit() or ch == "\ufffd" or (ch.isalpha() and ch.lower() == ch.upper()) for ch in word):
        return True
    for part in _SEP.split(word):
        letters = "".join(ch for ch in part if ch.isalpha())
        if (letters[:1].isupper() and letters.lower() not in _FUNCTION_WORDS) or _number_word(part):
            return True
    return False


def _excusable(word: str) -> bool:
    """Whether the question showing `word` excuses it: not a number word, not a number of fewer
    than three digits (cheap to list in a question, unlike a name or a longer number), not an
    undecodable piece (its text is not the character's)."""
    if "\ufffd" in word or any(_number_word(p) for p in _SEP.split(word)):
        return False
    digits = sum(ch.isdigit() for ch in word)
    return digits == 0 or digits >= 3


@functools.lru_cache(maxsize=256)
def _masks(pieces: tuple[str, ...], query_words: frozenset[str]) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    """(content, new content) of the output's tokens: see `content_mask`, `TokenView.new_content`."""
    content, new = [False] * len(pieces), [False] * len(pieces)
    for word, idx in _words(pieces):
        if _is_content(word):
            fresh = not (word.lower() in query_words and _excusable(word))
            for i in idx:
                content[i] = True
                new[i] = new[i] or fresh
    return tuple(content), tuple(new)


def words_of(text: str) -> frozenset[str]:
    """The words of `text` as `TokenView.new_content` compares them: `_WORD`, lower case
    ("4,417" is one word, and "lab 4" does not contain it)."""
    return frozenset(m.lower() for m in _WORD.findall(text))


def content_mask(pieces: tuple[str, ...]) -> np.ndarray:
    """Which output tokens carry content: digits, names (capitalised words that are not function
    words) and number words, with every sub-word piece of such a word. Style words ("keep",
    "annual") are not content; that is the point (docs/calibration.md)."""
    return np.array(_masks(tuple(pieces), frozenset())[0], dtype=bool)


@dataclass(frozen=True)
class Tolerance:
    """The base criterion, ``"mean+guard"``. A candidate label L is λ-similar when both hold:

    - the mean negative log-likelihood of the output grows by at most ``log(1 + lam)``, i.e. its
      perplexity grows by at most a factor ``1 + lam`` (the paper's test);
    - no single output token's negative log-likelihood grows by more than ``max_token_increase``
      nats (our addition: a mean over a long answer can hide one copied secret token).
      ``None`` turns the per-token test off.

    The defaults come from the calibration in docs/calibration.md. λ = 0.5 is safe there only
    with the per-token guard on; with the guard off, use λ ≤ 0.2. The permissive propagator's
    default is `AloneGuard` (``"alone"``, `DEFAULT_CRITERION`), which adds a test to this one;
    pass ``Tolerance()`` to get this one alone.
    """

    name: ClassVar[str] = "mean+guard"
    needs_alone: ClassVar[bool] = False  # whether the view must carry the leave-one-in gains
    lam: float = 0.5
    max_token_increase: float | None = 2.0

    def __post_init__(self) -> None:
        kind = type(self).__name__
        number(self.lam, f"{kind}.lam", low=0)
        number(self.max_token_increase, f"{kind}.max_token_increase", low=0, optional=True)

    @classmethod
    def of(cls, value: Tolerance | float | None, field: str = "tolerance") -> Tolerance:
        """`value` itself, a bare λ (with the default guard), or the defaults for None."""
        if isinstance(value, Tolerance):
            return value
        if isinstance(value, str):
            raise ConfigurationTypeError(f"{field}: {value!r} is not a number; for a criterion by name pass "
                                     f"Tolerance.named({value!r}), or give λ as a number (e.g. 0.5)")
        return cls() if value is None else cls(lam=number(value, field, low=0))

    @staticmethod
    def named(name: str, lam: float = 0.5, max_token_increase: float | None = 2.0) -> Tolerance:
        """The criterion registered under `name` (see `CRITERIA`) with this λ and guard."""
        if not isinstance(name, str) or name not in CRITERIA:
            raise ConfigurationError(f"criterion: unknown {name!r}; use one of {sorted(CRITERIA)}")
        return CRITERIA[name](lam=lam, max_token_increase=max_token_increase)

    @property
    def settings(self) -> dict[str, object]:
        """The criterion's parameters, for decision records."""
        return {"criterion": self.name, "lam": self.lam, "max_token_increase": self.max_token_increase}

    def compare(self, root: np.ndarray, candidate: np.ndarray, view: TokenView | None = None
                ) -> tuple[bool, float, float]:
        """(similar, mean increase, largest guarded per-token increase) of NLL, from per-token
        log-probs of the output under the root and the candidate context."""
        increase = root - candidate  # NLL(candidate) - NLL(root), per token
        guarded = self._guarded(increase, view)
        mean = float(increase.mean())
        worst = float(increase[guarded].max()) if guarded.any() else 0.0
        ok = mean <= math.log1p(self.lam)
        if self.max_token_increase is not None:
            ok = ok and worst <= self.max_token_increase
        return ok and (view is None or self._holds(root, candidate, view)), mean, worst

    def _holds(self, root: np.ndarray, candidate: np.ndarray, view: TokenView) -> bool:
        """A criterion's own test beyond the mean and the guard (none for the default)."""
        return True

    def base(self) -> Tolerance | None:
        """The criterion this one only adds tests to, whose label the search never ends below
        (`search_label` joins the two where they are incomparable); None for the base itself."""
        return None

    def _guarded(self, increase: np.ndarray, view: TokenView | None) -> np.ndarray:
        """The tokens the per-token guard looks at: all of them."""
        return np.ones(len(increase), dtype=bool)


@dataclass(frozen=True)
class ContentGuard(Tolerance):
    """``"content"``: the mean test, and the per-token guard on the output's content tokens only
    (`content_mask`), so a style word that moves when an unneeded document is withheld does not
    block the candidate. Without a view it is the default criterion."""

    name: ClassVar[str] = "content"

    def _guarded(self, increase: np.ndarray, view: TokenView | None) -> np.ndarray:
        return view.content() if view is not None else super()._guarded(increase, view)


@dataclass(frozen=True)
class CopyGuard(Tolerance):
    """``"copy"``: the default test, and the content tokens of the output found only in the
    withheld documents (what it could have copied from them) may grow by at most `copy_increase`
    nats each: a document whose own words become less likely without it was used."""

    name: ClassVar[str] = "copy"
    copy_increase: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        number(self.copy_increase, f"{type(self).__name__}.copy_increase", low=0)

    def base(self) -> Tolerance:
        return Tolerance(self.lam, self.max_token_increase)

    def _holds(self, root: np.ndarray, candidate: np.ndarray, view: TokenView) -> bool:
        copied = view.copied_from_withheld() & view.content()
        return not copied.any() or float((root - candidate)[copied].max()) <= self.copy_increase


@dataclass(frozen=True)
class ContentCopyGuard(CopyGuard, ContentGuard):
    """``"content+copy"``: the content-token guard of `ContentGuard` and the copy test of `CopyGuard`."""

    name: ClassVar[str] = "content+copy"

    def base(self) -> Tolerance:
        return ContentGuard(self.lam, self.max_token_increase)


@dataclass(frozen=True)
class AloneGuard(Tolerance):
    """``"alone"`` (leave-one-in): the default test, and no content token of the output (one the
    question does not already show) may be supported by the withheld documents only. A document
    supports a token when, shown alone, it raises the token's log-probability by more than
    `alone_gain` nats against no document at all. This sees a fact restated in other words
    (a number spelled out, a date as an ordinal), which the full context's scores can miss when
    other documents make any such value plausible. It costs one short context per document and
    one with none. Without a view carrying the gains it is the default criterion."""

    name: ClassVar[str] = "alone"
    needs_alone: ClassVar[bool] = True
    alone_gain: float = 1.5

    def __post_init__(self) -> None:
        super().__post_init__()
        number(self.alone_gain, f"{type(self).__name__}.alone_gain", low=0)

    def base(self) -> Tolerance:
        return Tolerance(self.lam, self.max_token_increase)

    def _holds(self, root: np.ndarray, candidate: np.ndarray, view: TokenView) -> bool:
        if view.alone is None or not view.withheld:
            return True
        new = view.new_content()
        if not new.any():
            return True
        # the withheld documents first: only a token one of them supports needs the shown ones
        flagged = new & self._support(view.alone.of(view.withheld), len(root))
        if not flagged.any():
            return True
        shown = view.alone.of(d for d in view.alone.ids if d not in view.withheld)
        return not (flagged & ~self._support(shown, len(root))).any()

    def _support(self, gains: Mapping[str, np.ndarray], size: int) -> np.ndarray:
        """Which output tokens some document of `gains`, shown alone, raises by over `alone_gain`."""
        return np.max([g for g in gains.values()] or [np.zeros(size)], axis=0) > self.alone_gain


CRITERIA: dict[str, type[Tolerance]] = {c.name: c for c in (Tolerance, ContentGuard, CopyGuard, ContentCopyGuard,
                                                            AloneGuard)}
DEFAULT_CRITERION = AloneGuard.name  # measured in docs/eval/hard: the only one below the truth on no hard group


def default_tolerance(value: Tolerance | float | None, field: str = "tolerance") -> Tolerance:
    """`value` itself, or the default criterion (`DEFAULT_CRITERION`) with λ = `value` (the default
    λ for None)."""
    return CRITERIA[DEFAULT_CRITERION].of(value, field)


def alone_view(view: TokenView, score: Scores, docs: Sequence[Any]) -> TokenView:
    """`view` with the leave-one-in gains of `docs` (each alone against none), scored by `score`
    when a criterion first asks for them."""
    return replace(view, alone=AloneGains(score, [d.id for d in docs]))


def token_view(prompt: Any, decode: Callable[[Sequence[int]], str], query: str, docs: Sequence[Any],
               output_ids: Sequence[int]) -> TokenView:
    """The `TokenView` of one decision: the output's tokens as text, each document's token ids
    (from its span in the full prompt built by `prompt`, a `ChatPrompt`), and every other prompt
    token (template and question) as always shown."""
    built = prompt.build(query, docs)
    inside = {i for start, end in built.spans.values() for i in range(start, end)}
    doc_tokens = {d: frozenset(built.ids[s:e]) for d, (s, e) in built.spans.items()}
    rest = frozenset(t for i, t in enumerate(built.ids) if i not in inside)
    ids = tuple(int(t) for t in output_ids)
    return TokenView(ids, tuple(decode([t]) for t in ids), doc_tokens, rest, query_words=words_of(query)).with_masks()
