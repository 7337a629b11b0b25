"""The label search of method.md, step 4: candidates, lower covers, the budget and the search
itself (`search_label`), shared by every propagator that scores restricted contexts. The
tolerance test it applies lives in `_tolerance.py` (re-exported here).

The search is bounded (`SearchBudget`): past its candidate, scoring or time budget it raises
`SearchBudgetError`, which every propagator turns into the conservative label with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from ._checks import choice, instance, number, whole
from ._errors import ScoringError, SearchBudgetError
from ._inputs import DecisionInputs
from ._lattice import Label, Lattice
from ._record import Candidate
from ._tolerance import CRITERIA, TokenView, Tolerance, token_view

if TYPE_CHECKING:
    from ._sources import LabelledSource

__all__ = ["CRITERIA", "PRUNING", "Prune", "SearchBudget", "SearchBudgetError", "TokenView", "Tolerance",
           "candidate_labels", "exhaustive_label", "lower_covers", "search_label", "token_view"]

Score = Callable[[list[frozenset[str]]], Sequence[np.ndarray]]
Prune = Literal["exact", "monotone", "none"]
PRUNING: tuple[str, ...] = ("exact", "monotone", "none")


@dataclass(frozen=True)
class SearchBudget:
    """How far one label search may go before it gives up and the conservative label is used.

    `max_candidates`: candidate labels enumerated (the join-closure of the labels present);
    `max_scored`: distinct restricted contexts scored (one model row each), not counting the
    leave-one-in contexts of the ``"alone"`` criterion (at most one per document, and one with
    none); `seconds`: wall time of the search, those included, checked after every scoring step
    (for those, after every 8 contexts). The defaults keep a decision on the embedded
    model within seconds on two CPU cores for contexts of up to ~1,000 tokens
    (benchmarks/search_scaling.py); `None` lifts a limit.
    """

    max_candidates: int = 4096
    max_scored: int | None = 64
    seconds: float | None = 30.0

    def __post_init__(self) -> None:
        whole(self.max_candidates, "SearchBudget.max_candidates")
        whole(self.max_scored, "SearchBudget.max_scored", optional=True)
        number(self.seconds, "SearchBudget.seconds", above=0, optional=True)

    @classmethod
    def of(cls, value: SearchBudget | None, max_candidates: int | None = None) -> SearchBudget:
        budget = instance(value, SearchBudget, "budget", "a SearchBudget", optional=True) or cls()
        whole(max_candidates, "max_candidates", optional=True)
        if max_candidates is not None and max_candidates != budget.max_candidates:
            budget = cls(max_candidates, budget.max_scored, budget.seconds)
        return budget


def candidate_labels(lattice: Lattice, present: Iterable[Label], *, limit: int = 4096) -> list[Label]:
    """⊥ plus every join of the labels present (the join-closure), lowest rank first.

    Built one generator at a time (closure ← closure ∪ {c ⊔ p}), so the work is |closure| joins per
    distinct label present; more than `limit` candidates raises `SearchBudgetError`.
    """
    closure = {lattice.bottom}
    for p in dict.fromkeys(present):
        if p in closure:
            continue
        closure |= {c.join(p) for c in closure}
        if len(closure) > limit:
            raise SearchBudgetError(
                f"more than {limit} candidate labels; the search would be too slow. Use coarser "
                "labels or raise PermissivePropagator(max_candidates=...)"
            )
    return sorted(closure, key=lambda lab: (lattice.rank(lab), str(lab)))


def lower_covers(label: Label, candidates: Sequence[Label]) -> list[Label]:
    """The candidates immediately below `label` (maximal among those strictly below it).

    Candidates strictly below are taken highest rank first; one is maximal exactly when it is not
    below a maximal one already found (a < b implies rank(a) < rank(b)).
    """
    lattice = label.lattice
    below = sorted((c for c in candidates if c < label), key=lambda c: -lattice.rank(c))
    covers: list[Label] = []
    for c in below:
        if not any(c < m for m in covers):
            covers.append(c)
    return sorted(covers, key=lambda c: (lattice.rank(c), str(c)))


class _Walk:
    """Scores, records and the budget of one search (shared by the walk and the exhaustive labeller)."""

    def __init__(self, inputs: DecisionInputs, docs: list[LabelledSource], score: Score, tolerance: Tolerance,
                 budget: SearchBudget, known: dict[frozenset[str], np.ndarray] | None,
                 view: TokenView | None) -> None:
        self.inputs, self.docs, self._score, self.tolerance = inputs, docs, score, tolerance
        self.start = time.perf_counter()
        if view is not None and view.alone is not None:
            view = replace(view, alone=view.alone.checked(self._check_time))
        self.budget, self.view = budget, view
        self.memo: dict[frozenset[str], np.ndarray] = dict(known or {})
        self.scored = 0
        lattice = inputs.lattice
        present = [inputs.label_of(d) for d in docs]
        self.root = lattice.join_all(present)
        self.cands = candidate_labels(lattice, present, limit=budget.max_candidates)
        self.seen: dict[Label, Candidate] = {}
        self.need([self.root])
        self.root_scores = self.memo[self.induced(self.root)]

    def induced(self, label: Label) -> frozenset[str]:
        return frozenset(d.id for d in self.docs if self.inputs.label_of(d) <= label)

    def need(self, labels: list[Label]) -> None:
        self._check_time()
        sets = [s for s in dict.fromkeys(self.induced(lab) for lab in labels) if s not in self.memo]
        if self.budget.max_scored is not None and self.scored + len(sets) > self.budget.max_scored:
            raise SearchBudgetError(f"the search needs more than {self.budget.max_scored} scored contexts "
                                    f"({len(self.cands)} candidate labels); raise SearchBudget(max_scored=...)")
        for key, scores in zip(sets, self._score(sets) if sets else []):
            if not np.all(np.isfinite(scores)):
                raise ScoringError("non-finite score from the model")
            self.memo[key] = scores
        self.scored += len(sets)
        self._check_time()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _check_time(self) -> None:
        spent = self.elapsed()
        if self.budget.seconds is not None and spent > self.budget.seconds:
            raise SearchBudgetError(f"the search took over {self.budget.seconds:g} s ({spent:.1f} s, {self.scored} "
                                    "contexts scored); raise SearchBudget(seconds=...)")

    def record(self, label: Label) -> Candidate:
        if label not in self.seen:
            ids = self.induced(label)
            scores = self.memo[ids]
            view = self.view.for_withheld(frozenset(d.id for d in self.docs) - ids) if self.view else None
            similar, mean, worst = self.tolerance.compare(self.root_scores, scores, view)
            self._check_time()  # a criterion may score contexts of its own (`AloneGains`)
            self.seen[label] = Candidate(label.to_json(), [d.id for d in self.docs if d.id in ids],
                                         float(-scores.mean()), mean, worst, similar or label == self.root)
        return self.seen[label]

    def choose(self) -> tuple[Label, list[str], list[Candidate]]:
        """Among the passing labels with no passing label below them, the lowest score (ties:
        lower rank, then the label's JSON text)."""
        passed = [lab for lab, c in self.seen.items() if c.similar]
        minimal = [lab for lab in passed if not any(p < lab for p in passed)]
        lattice = self.inputs.lattice
        best = min(minimal, key=lambda lab: (self.seen[lab].mean_nll, lattice.rank(lab), str(lab)))
        return best, self.inputs.admitted(best), list(self.seen.values())


def search_label(inputs: DecisionInputs, docs: list[LabelledSource], score: Score, tolerance: Tolerance,
                 max_candidates: int | None = None, known: dict[frozenset[str], np.ndarray] | None = None,
                 *, budget: SearchBudget | None = None, view: TokenView | None = None,
                 notes: list[str] | None = None, floor: Label | None = None,
                 prune: Prune = "exact") -> tuple[Label, list[str], list[Candidate]]:
    """The label search of method.md, step 4, for any scorer of document sets.

    `score(sets)` returns the per-token log-probabilities of the output given each set of document
    ids (the context induced by a candidate label); results are memoized by set, and `known`
    pre-seeds them. Walks down from the join of the labels present, descending only below
    λ-similar labels. The result is a passing label with no passing label below it among those
    scored (the walk can stop at a label whose lower covers all fail while another path reaches
    a lower passing one); among those, the lowest score (ties: lower rank, then the label's JSON
    text). `view` gives the criterion the output's tokens; `notes` receives what the record
    should say about the scorer's limits. Returns (label, admitted ids, candidate records).

    Pruning, with `floor` the label the output gets whatever is chosen (the query's): ``"exact"``
    skips the candidates that cannot change the decision's label `floor ⊔ L*`. By monotonicity of
    the join, every label at or below the floor gives the floor: when all documents are at or
    below it nothing is scored, and the walk stops when its whole frontier is at or below it and
    every passing label above it has a passing label below (the chosen label is then at or below
    the floor, with or without the rest of the walk). The label is exactly the full walk's; the
    admitted documents may differ among those at or below the floor, which cannot raise it.
    ``"monotone"`` (an approximation, opt-in) also skips every candidate below a label that
    failed, as if withholding more could never make the output more likely. ``"none"``: the full
    walk.
    """
    choice(prune, "prune", PRUNING)
    floor = None if prune == "none" else floor
    present = inputs.lattice.join_all([inputs.label_of(d) for d in docs])
    if floor is not None and present <= floor:
        if notes is not None:
            notes.append("every document's label is at or below the query's: nothing to withhold, nothing scored")
        return present, [d.id for d in inputs.documents], []
    budget = SearchBudget.of(budget, max_candidates)
    walk = _walk(inputs, docs, score, tolerance, budget, known, view, floor, prune)
    label, admitted, candidates = walk.choose()
    base = tolerance.base()
    if base is not None:
        # a stricter criterion fails more candidates, and in a lattice that is not a chain the
        # choice can then move to an incomparable label: never end below the base criterion's
        left = SearchBudget(budget.max_candidates,
                            None if budget.max_scored is None else max(1, budget.max_scored - walk.scored),
                            None if budget.seconds is None else max(1e-3, budget.seconds - walk.elapsed()))
        try:
            other = _walk(inputs, docs, score, base, left, {**(known or {}), **walk.memo}, view, floor,
                          prune).choose()[0]
        except SearchBudgetError as exc:
            raise SearchBudgetError(f"the check against the {base.name} criterion ran out of what the "
                                    f"{tolerance.name} walk left of the budget: {exc}") from exc
        if not other <= label:
            if notes is not None:
                notes.append(f"the {tolerance.name} criterion chose {label.to_json()}, not above the "
                             f"{base.name} criterion's {other.to_json()}: the label is their join")
            label = label.join(other)
            admitted = inputs.admitted(label)
    if notes is not None:
        notes.extend(scorer_limit_notes(candidates, view))
    return label, admitted, candidates


def _walk(inputs: DecisionInputs, docs: list[LabelledSource], score: Score, tolerance: Tolerance,
          budget: SearchBudget, known: dict[frozenset[str], np.ndarray] | None, view: TokenView | None,
          floor: Label | None, prune: Prune) -> _Walk:
    """The walk of `search_label`, done: its records hold every candidate it scored."""
    walk = _Walk(inputs, docs, score, tolerance, budget, known, view)
    walk.record(walk.root)
    frontier, visited = [walk.root], {walk.root}
    failed: list[Label] = []
    while frontier and not (floor is not None and _decided(walk, frontier, floor)):
        covers = {lab: lower_covers(lab, walk.cands) for lab in frontier}
        if prune == "monotone":
            covers = {lab: [c for c in cs if not any(c < f for f in failed)] for lab, cs in covers.items()}
        walk.need([c for cs in covers.values() for c in cs])
        nxt: list[Label] = []
        for lab in frontier:
            similar = [c for c in covers[lab] if walk.record(c).similar]
            failed.extend(c for c in covers[lab] if c not in similar)
            nxt.extend(c for c in similar if c not in visited)
            visited.update(similar)
        frontier = nxt
    return walk


def _decided(walk: _Walk, frontier: list[Label], floor: Label) -> bool:
    """Whether the decision's label is the floor whatever the rest of the walk finds: the frontier
    is at or below the floor, and no passing label above the floor can be minimal."""
    if not all(f <= floor for f in frontier):
        return False
    passed = [lab for lab, c in walk.seen.items() if c.similar]
    return all(lab <= floor or any(p < lab for p in passed) for lab in passed)


def exhaustive_label(inputs: DecisionInputs, docs: list[LabelledSource], score: Score, tolerance: Tolerance,
                     budget: SearchBudget | None = None, known: dict[frozenset[str], np.ndarray] | None = None,
                     view: TokenView | None = None) -> tuple[Label, list[str], list[Candidate]]:
    """The reference labeller: every candidate label scored, the same criterion, choice rule and
    join with the base criterion's label (`search_label`).

    What the walk could achieve with this criterion if it never stopped early; for evaluation
    (``ifc eval`` reports it as ``reference``), not for production: it scores every induced set.
    """
    walk = _Walk(inputs, docs, score, tolerance, budget or SearchBudget(max_scored=None, seconds=None),
                 known, view)
    walk.need(walk.cands)
    for lab in walk.cands:
        walk.record(lab)
    label, admitted, candidates = walk.choose()
    base = tolerance.base()
    if base is not None:  # the join rule of `search_label`
        other = exhaustive_label(inputs, docs, score, base, budget, walk.memo, view)[0]
        if not other <= label:
            label = label.join(other)
            admitted = inputs.admitted(label)
    return label, admitted, candidates


_IMPROVES = 0.05  # nats of mean NLL: withholding made the output this much more likely


def scorer_limit_notes(candidates: Sequence[Candidate], view: TokenView | None) -> list[str]:
    """What the record should say when the scorer shows it may not see a dependence: the chosen
    context withholds a document whose words the output repeats, yet the output became *more*
    likely without it (a small model copying a value from what is left, as in two-hop answers)."""
    if not candidates or view is None:
        return []
    full = max(candidates, key=lambda c: len(c.documents))
    notes = []
    for c in candidates:
        withheld = sorted(set(full.documents) - set(c.documents))
        if not c.similar or not withheld or c.mean_increase > -_IMPROVES:
            continue
        words = {t for t, m in zip(view.output_ids, view.new_content()) if m}
        shared = [d for d in withheld if view.doc_tokens.get(d, frozenset()) & words]
        if shared:
            notes.append(f"scorer limit: withholding {shared} made the output more likely (mean NLL "
                         f"{c.mean_increase:+.2f} nats) although the output repeats its words; this scorer may "
                         "not see that dependence (two-hop or paraphrased answers): use enforce mode or a "
                         "larger scorer")
            break
    return notes
