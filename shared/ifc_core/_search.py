"""The label search of method.md, step 4: candidates, lower covers, the tolerance test and the
search itself (`search_label`), shared by every propagator that scores restricted contexts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import IFCError, ScoringError
from ._lattice import Label, Lattice
from ._record import Candidate

if TYPE_CHECKING:
    from ._propagators import _Inputs
    from ._sources import LabelledSource

__all__ = ["Tolerance", "candidate_labels", "lower_covers", "search_label"]


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

    @classmethod
    def of(cls, value: Tolerance | float | None) -> Tolerance:
        """`value` itself, a bare λ (with the default guard), or the defaults for None."""
        if isinstance(value, (int, float)):
            return cls(lam=float(value))
        return value or cls()

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


def search_label(inputs: _Inputs, docs: list[LabelledSource], score: Any, tolerance: Tolerance,
                 max_candidates: int, known: dict[frozenset[str], np.ndarray] | None = None,
                 ) -> tuple[Label, list[str], list[Candidate]]:
    """The label search of method.md, step 4, for any scorer of document sets.

    `score(sets)` returns the per-token log-probabilities of the output given each set of document
    ids (the context induced by a candidate label); results are memoized by set, and `known`
    pre-seeds them. Walks down from the join of the labels present, descending only below
    λ-similar labels, and picks among the minimal ones the lowest score (ties: lower rank, then
    the label's JSON text). Returns (label, admitted ids, candidate records).
    """
    lattice = inputs.lattice
    present = [inputs.label_of(d) for d in docs]
    root = lattice.join_all(present)
    cands = candidate_labels(lattice, present, limit=max_candidates)
    memo: dict[frozenset[str], np.ndarray] = dict(known or {})

    def induced(label: Label) -> frozenset[str]:
        return frozenset(d.id for d in docs if inputs.label_of(d) <= label)

    def need(labels: list[Label]) -> None:
        sets = [s for s in dict.fromkeys(induced(lab) for lab in labels) if s not in memo]
        for key, scores in zip(sets, score(sets) if sets else []):
            if not np.all(np.isfinite(scores)):
                raise ScoringError("non-finite score from the model")
            memo[key] = scores

    need([root])
    root_scores = memo[induced(root)]
    seen: dict[Label, Candidate] = {}

    def record(label: Label) -> Candidate:
        if label not in seen:
            ids = induced(label)
            scores = memo[ids]
            similar, mean, worst = tolerance.compare(root_scores, scores)
            seen[label] = Candidate(label.to_json(), [d.id for d in docs if d.id in ids],
                                    float(-scores.mean()), mean, worst, similar or label == root)
        return seen[label]

    record(root)
    minimal: list[Label] = []
    frontier, visited = [root], {root}
    while frontier:
        covers = {lab: lower_covers(lab, cands) for lab in frontier}
        need([c for cs in covers.values() for c in cs])
        nxt: list[Label] = []
        for lab in frontier:
            similar = [c for c in covers[lab] if record(c).similar]
            if not similar:
                minimal.append(lab)
            nxt.extend(c for c in similar if c not in visited)
            visited.update(similar)
        frontier = nxt
    best = min(minimal, key=lambda lab: (seen[lab].mean_nll, lattice.rank(lab), str(lab)))
    admitted = [d.id for d in inputs.documents if inputs.label_of(d) <= best]
    return best, admitted, list(seen.values())
