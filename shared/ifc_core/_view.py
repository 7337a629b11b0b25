"""What a criterion may look at besides the scores (`TokenView`): the output's tokens, the
documents' tokens, the question's words, and the leave-one-in gains (`AloneGains`, lazy).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._content import content_mask, word_masks, words_of
from ._errors import ScoringError

__all__ = ["AloneGains", "Scores", "TokenView", "alone_view", "token_view"]

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
        return np.array(word_masks(self.pieces, self.query_words)[1], dtype=bool)

    def with_masks(self) -> TokenView:
        """This view with its masks computed once (`masks`)."""
        return replace(self, masks=word_masks(self.pieces, self.query_words))

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
