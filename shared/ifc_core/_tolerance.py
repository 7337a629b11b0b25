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

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._checks import number
from ._content import content_mask
from ._errors import ConfigurationError, ConfigurationTypeError
from ._view import AloneGains, TokenView, alone_view, token_view

__all__ = ["CRITERIA", "DEFAULT_CRITERION", "AloneGains", "AloneGuard", "ContentCopyGuard", "ContentGuard", "CopyGuard",
           "TokenView", "Tolerance", "alone_view", "content_mask", "default_tolerance", "token_view"]



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
