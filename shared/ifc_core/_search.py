"""The label search of method.md, step 4: candidates, lower covers and the tolerance test."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ._errors import IFCError
from ._lattice import Label, Lattice

__all__ = ["Tolerance", "candidate_labels", "lower_covers"]


@dataclass(frozen=True)
class Tolerance:
    """When is a restricted context "as good as" the full one for producing the output?

    A candidate label L is λ-similar when both hold:

    - the mean negative log-likelihood of the output grows by at most ``log(1 + lam)``, i.e. its
      perplexity grows by at most a factor ``1 + lam`` (the paper's test);
    - no single output token's negative log-likelihood grows by more than ``max_token_increase``
      nats (our addition: a mean over a long answer can hide one copied secret token).
      ``None`` turns the per-token test off.

    The defaults come from the calibration in docs/calibration.md. λ = 0.5 is safe there only
    with the per-token guard on; with the guard off, use λ ≤ 0.2.
    """

    lam: float = 0.5
    max_token_increase: float | None = 2.0

    def __post_init__(self) -> None:
        if not (self.lam >= 0 and math.isfinite(self.lam)):
            raise ValueError(f"Tolerance.lam must be a finite number >= 0, got {self.lam!r}")
        if self.max_token_increase is not None and not self.max_token_increase >= 0:
            raise ValueError("Tolerance.max_token_increase must be >= 0 or None")

    def compare(self, root: np.ndarray, candidate: np.ndarray) -> tuple[bool, float, float]:
        """(similar, mean increase, largest per-token increase) of NLL, from per-token log-probs."""
        increase = root - candidate  # NLL(candidate) - NLL(root), per token
        mean, worst = float(increase.mean()), float(increase.max())
        ok = mean <= math.log1p(self.lam)
        if self.max_token_increase is not None:
            ok = ok and worst <= self.max_token_increase
        return ok, mean, worst


def candidate_labels(lattice: Lattice, present: Iterable[Label], *, limit: int = 4096) -> list[Label]:
    """⊥ plus every join of the labels present (the join-closure), lowest rank first."""
    closure = {lattice.bottom}
    frontier = set(present) - closure
    closure |= frontier
    while frontier:
        new = {a.join(b) for a in frontier for b in closure} - closure
        closure |= new
        frontier = new
        if len(closure) > limit:
            raise IFCError(
                f"more than {limit} candidate labels; the search would be too slow. Use coarser "
                "labels or raise PermissivePropagator(max_candidates=...)"
            )
    return sorted(closure, key=lambda lab: (lattice.rank(lab), str(lab)))


def lower_covers(label: Label, candidates: Sequence[Label]) -> list[Label]:
    """The candidates immediately below `label` (maximal among those strictly below it)."""
    below = [c for c in candidates if c < label]
    return [c for c in below if not any(c < d for d in below)]
