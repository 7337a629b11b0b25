"""`PermissivePropagator`: the prompt-based permissive propagator of method.md. `label()` labels
an existing output (estimate mode, fails closed); `enforce()` generates, searches the label, and
regenerates from only the admitted documents (the safety wrapper), so the returned text was
computed only from inputs at or below its label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from . import _checks as checks
from ._inputs import DecisionInputs, Output
from ._lattice import Lattice
from ._prompt import ChatPrompt
from ._propagators import Propagator
from ._record import Decision
from ._run_order import RunOrders
from ._search import PRUNING, Prune, SearchBudget, Tolerance, search_label, token_view
from ._tolerance import alone_view, default_tolerance
from ._spans import ScoreMemo, span_labels, spans_of
from .scoring.base import Generation, Scorer, ScoringRun, open_run
from ._sources import LabelledSource

__all__ = ["PermissivePropagator"]


class PermissivePropagator(Propagator):
    """Labels an output with only the labels of the inputs that influenced it (method.md).

    Candidate labels are ⊥ and the joins of the labels present; the search walks down from the
    join of all document labels, descending only below labels whose restricted context keeps the
    output λ-similar (`tolerance`), and picks among the minimal ones the lowest score (ties: lower
    rank, then the label's JSON text). Scores are memoized by the induced document set.

    `tolerance`: a criterion (`Tolerance.named`), or a bare λ for the default one, ``"alone"``:
    the mean and per-token test of `Tolerance`, and no content token of the output supported only
    by documents the candidate withholds, each shown alone (docs/calibration.md). ``Tolerance()``
    is the cheaper test without the leave-one-in part, below the truth on paraphrased answers.

    `doc_order` is the order the prompt shows documents in. ``"run"`` (default): sorted by label
    rank, so that restricted contexts share prompt prefixes and the KV cache; in a run (decisions
    with the same `id`, as the tracker gives them), the documents an earlier decision showed keep
    their place and new ones follow, sorted by rank, so that the run's next prompt extends its
    last one and the scorer pays only for the new tokens. ``"label"``: sorted by rank, always.
    ``"original"``: the caller's order.

    `prune` (see `search_label`): ``"exact"`` (default) skips only candidates that cannot change
    the decision's label; ``"monotone"`` also skips every candidate below one that failed (an
    approximation: fewer contexts scored, possibly a higher label); ``"none"`` walks everything.
    """

    name = "permissive"

    def __init__(self, scorer: Scorer, *, tolerance: Tolerance | float | None = None,
                 prompt: ChatPrompt | None = None, lattice: Lattice | None = None,
                 doc_order: Literal["run", "label", "original"] = "run", max_candidates: int = 4096,
                 budget: SearchBudget | None = None, prune: Prune = "exact") -> None:
        super().__init__(scorer, prompt=prompt, lattice=lattice)
        self.tolerance = default_tolerance(tolerance)
        self.doc_order = checks.choice(doc_order, "doc_order", ("run", "label", "original"))
        self.prune = checks.choice(prune, "prune", PRUNING)
        self.max_candidates = checks.whole(max_candidates, "max_candidates")
        self.budget = SearchBudget.of(budget, max_candidates)
        self._orders = RunOrders()

    @property
    def settings(self) -> dict[str, Any]:
        return {**self.tolerance.settings, "doc_order": self.doc_order, "prune": self.prune,
                "budget": vars(self.budget)}

    def forget(self, id: str) -> None:
        super().forget(id)
        self._orders.forget(id)

    def _order(self, inputs: DecisionInputs, id: str | None) -> list[LabelledSource]:
        if self.doc_order == "original":
            return list(inputs.documents)
        if self.doc_order == "run" and id is not None:
            return self._orders.order(id, inputs)
        return inputs.by_rank()

    def label(self, query: LabelledSource, documents: Sequence[LabelledSource], output: Output,
              *, id: str | None = None, spans: Mapping[str, tuple[int, int]] | None = None) -> Decision:
        def admit(inputs: DecisionInputs, text: str, ids: tuple[int, ...] | None, spent: list[Any]) -> tuple[Any, ...]:
            scorer = self._need_scorer()
            run = open_run(scorer, ids if ids is not None else scorer.encode(text), self.run_key(id))
            spent.append(run)
            return self._search(inputs, self._order(inputs, id), run, None,
                                spans_of(spans, scorer, run.output_ids, text, inputs.notes))

        return self._estimate(query, documents, output, id, admit)

    def enforce(self, query: LabelledSource, documents: Sequence[LabelledSource], *,
                max_new_tokens: int = 128, id: str | None = None) -> Decision:
        def admit(inputs: DecisionInputs, docs: list[LabelledSource], prompt: tuple[int, ...],
                  gen: Generation, spent: list[Any]) -> tuple[Any, ...]:
            run = open_run(self._need_scorer(), gen.ids, self.run_key(id))
            spent.append(run)
            return self._search(inputs, docs, run, (prompt, gen))

        return self._safety_wrapper(query, documents, max_new_tokens, id, admit)

    def _search(self, inputs: DecisionInputs, docs: list[LabelledSource], run: ScoringRun,
                seed: tuple[tuple[int, ...], Generation] | None, masks: Mapping[str, np.ndarray] | None = None
                ) -> tuple[Any, ...]:
        def score(sets: list[frozenset[str]]) -> list[np.ndarray]:
            prompts = [self.prompt.build(inputs.query.text, [d for d in docs if d.id in s]).ids for s in sets]
            return run.score(prompts)

        known = {frozenset(d.id for d in docs): run.seed(*seed)} if seed is not None else {}
        view = token_view(self.prompt, self._need_scorer().decode, inputs.query.text, docs, run.output_ids)
        memo = ScoreMemo(score, known)  # shared with the spans' searches
        if self.tolerance.needs_alone:
            view = alone_view(view, memo, docs)
        found = search_label(inputs, docs, memo, self.tolerance, self.max_candidates, known,
                             budget=self.budget, view=view, notes=inputs.notes, floor=inputs.query_label,
                             prune=self.prune)
        if not masks:
            return found
        return (*found, span_labels(inputs, docs, memo, self.tolerance, masks, budget=self.budget,
                                    max_candidates=self.max_candidates, view=view, floor=inputs.query_label,
                                    prune=self.prune))
