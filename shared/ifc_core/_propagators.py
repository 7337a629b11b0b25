"""Propagators: give an LLM output a label from the labels of its inputs.

- `ConservativePropagator`: classic taint, the join of everything in the prompt.
- `PermissivePropagator`: the prompt-based permissive propagator of method.md. `label()` labels an
  existing output (estimate mode, fails closed); `enforce()` generates, searches the label, and
  regenerates from only the admitted documents (the safety wrapper), so the returned text was
  computed only from inputs at or below its label.
"""

from __future__ import annotations

import itertools
import numbers
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np

from . import _checks as checks
from ._errors import ConfigurationError, IFCError, ScoringError
from ._lattice import Label, Lattice
from ._prompt import ChatPrompt
from ._record import Candidate, Decision
from ._run_order import RunOrders
from ._search import PRUNING, Prune, SearchBudget, Tolerance, search_label, token_view
from ._spans import ScoreMemo, span_labels, spans_of
from .scoring.base import Generation, Scorer, ScoringRun, forget_run, open_run
from ._sources import LabelledSource

__all__ = ["Propagator", "ConservativePropagator", "PermissivePropagator"]

Output = str | Sequence[int]
_NAMESPACES = itertools.count(1)


class _Inputs:
    """The inputs of one decision, with every label checked; unknown or missing labels become ⊤."""

    def __init__(self, query: LabelledSource, documents: Sequence[LabelledSource],
                 lattice: Lattice | None) -> None:
        checks.instance(query, LabelledSource, "query", "a LabelledSource")
        self.query, self.documents = query, checks.items(documents, LabelledSource, "documents", "LabelledSource")
        checks.instance(lattice, Lattice, "lattice", "a Lattice", optional=True)
        given = [s.label for s in [query, *self.documents] if s.label is not None]
        lattice = lattice or (given[0].lattice if given else None)
        if lattice is None:
            raise ConfigurationError("lattice: no input carries a label; pass lattice=... so unlabelled inputs "
                                     "can be given ⊤")
        self.lattice = lattice
        self.notes: list[str] = []
        self.problem: str | None = None
        ids = [d.id for d in self.documents]
        if len(set(ids)) != len(ids):
            self.problem = "duplicate document ids; each document needs its own id"
        self.query_label = self._checked(query)
        checked = [self._checked(d) for d in self.documents]
        self.labels = dict(zip(ids, checked))
        # from the list, not the dict: duplicate ids must not hide a label from the conservative join
        self.conservative = self.query_label.join(lattice.join_all(checked))

    def _checked(self, source: LabelledSource) -> Label:
        if source.label is None:
            self.notes.append(f"{source.id}: unlabelled, treated as ⊤")
            return self.lattice.top
        if source.label.lattice != self.lattice:
            self.problem = f"{source.id}: label {source.label} is not in this lattice"
            return self.lattice.top
        return source.label

    def label_of(self, doc: LabelledSource) -> Label:
        return self.labels[doc.id]

    def by_rank(self, documents: Sequence[LabelledSource] | None = None) -> list[LabelledSource]:
        """Documents sorted by label rank (stable), so restricted contexts share prompt prefixes."""
        return sorted(self.documents if documents is None else documents,
                      key=lambda d: self.lattice.rank(self.label_of(d)))


class Propagator(ABC):
    """Labels LLM outputs. Every entry point returns a `Decision` carrying its record."""

    name: ClassVar[str]
    needs_scorer: ClassVar[bool] = True  # labelling needs a model (only the conservative one does not)

    def __init__(self, scorer: Scorer | None = None, *, prompt: ChatPrompt | None = None,
                 lattice: Lattice | None = None) -> None:
        self.scorer = checks.scorer(scorer, f"{type(self).__name__}.scorer", optional=not self.needs_scorer)
        if prompt is not None and not callable(getattr(prompt, "build", None)):
            raise checks.wrong_type("prompt", "a ChatPrompt or None", prompt)
        checks.instance(lattice, Lattice, "lattice", "a Lattice", optional=True)
        self.lattice = lattice
        self._prompt = prompt
        self._namespace = f"{type(self).__name__}-{next(_NAMESPACES)}"

    @property
    def settings(self) -> dict[str, Any]:
        """The propagator's parameters, copied into every decision record."""
        return {}

    @property
    def prompt(self) -> ChatPrompt:
        """The prompt model (built lazily from the scorer's chat template)."""
        if self._prompt is None:
            self._prompt = ChatPrompt(self._need_scorer())
        return self._prompt

    def run_key(self, id: str | None) -> str | None:
        """The scorer's key for the run a decision `id` belongs to (this propagator's own space:
        two propagators sharing a scorer never share a run's state)."""
        return None if id is None else f"{self._namespace}/{id}"

    def forget(self, id: str) -> None:
        """Drop what is kept for run `id` (the scorer's caches). The tracker calls it when it
        finishes or evicts the run; a later decision of that run starts afresh."""
        forget_run(self.scorer, f"{self._namespace}/{id}")

    def _order(self, inputs: _Inputs, id: str | None) -> list[LabelledSource]:
        """The documents in the order the scoring and generation prompts show them."""
        return inputs.by_rank()

    def _need_scorer(self) -> Scorer:
        if self.scorer is None:
            raise IFCError(f"{type(self).__name__} needs a scorer for this; pass HFScorer.load() or VLLMScorer(url)")
        return self.scorer

    @abstractmethod
    def label(self, query: LabelledSource, documents: Sequence[LabelledSource], output: Output,
              *, id: str | None = None, spans: Mapping[str, tuple[int, int]] | None = None) -> Decision:
        """Estimate mode: label an existing `output` (text, or the exact generated token ids).

        `spans` names [start, end) character ranges of the output (a tool call's arguments,
        `render_call_spans`) that get labels of their own in ``decision.spans``, where the
        propagator can score them (``_spans.py``)."""

    @abstractmethod
    def enforce(self, query: LabelledSource, documents: Sequence[LabelledSource], *,
                max_new_tokens: int = 128, id: str | None = None) -> Decision:
        """Enforce mode: generate an answer and return it with a label that is sound by construction."""

    def _decision(self, inputs: _Inputs, mode: Literal["estimate", "enforce"], output: str,
                  start: float, id: str | None, **kw: Any) -> Decision:
        admitted = kw.pop("admitted", [d.id for d in inputs.documents])
        fallback = kw.get("fallback_reason")
        label = kw.pop("label", inputs.conservative) if fallback is None else inputs.conservative
        if fallback is not None:
            admitted = [d.id for d in inputs.documents]
        return Decision(
            id=id, mode=mode, propagator=self.name, label=label,
            conservative_label=inputs.conservative, query_label=inputs.query_label, output=output,
            admitted=admitted, withheld=[d.id for d in inputs.documents if d.id not in admitted],
            wall_time_s=round(time.perf_counter() - start, 4),
            model_id=self.scorer.model_id if self.scorer else None, notes=inputs.notes, **kw,
        )

    def _estimate(self, query: LabelledSource, documents: Sequence[LabelledSource], output: Output,
                  id: str | None, admit: Any) -> Decision:
        """Estimate mode, for any way of choosing the label; fails closed.

        `admit(inputs, text, ids, spent)` returns (label L*, admitted ids, candidates[, span labels])
        and appends the scoring runs and generations it uses to `spent` (their cost goes in the
        record, also on failure). A problem with the inputs, an empty output, or any error gives the conservative
        label with the reason recorded.
        """
        start = time.perf_counter()
        _check_call(output=output, id=id)
        inputs = _Inputs(query, documents, self.lattice)
        text = ""
        spent: list[Any] = []
        try:
            text, ids = self._text(output)  # a served scorer decodes ids remotely: inside the guard
            if inputs.problem:
                raise IFCError(inputs.problem)
            if not text.strip():
                raise ScoringError("empty output")
            best, admitted, candidates, *spans = admit(inputs, text, ids, spent)
        except Exception as exc:  # fail closed: any error or doubt gives the conservative label
            return self._decision(inputs, "estimate", text, start, id, fallback_reason=_reason(exc),
                                  settings=self.settings, **_cost(spent))
        return self._decision(inputs, "estimate", text, start, id, label=inputs.query_label.join(best),
                              admitted=admitted, candidates=candidates, settings=self.settings,
                              spans=spans[0] if spans else {}, **_cost(spent))

    def _safety_wrapper(self, query: LabelledSource, documents: Sequence[LabelledSource], max_new_tokens: int,
                        id: str | None, admit: Any) -> Decision:
        """Enforce mode, for any way of choosing the label (method.md, step 6).

        Generate from every document (sorted by label rank) with `_generate`; `admit(inputs, docs,
        context_ids, generation, spent)` returns (label L*, admitted ids, candidates), appending
        what it runs to `spent`; regenerate from the admitted documents only. On any error the
        text generated from every document is released with the conservative label.
        """
        start = time.perf_counter()
        _check_call(max_new_tokens=max_new_tokens, id=id)
        inputs = _Inputs(query, documents, self.lattice)
        scorer = self._need_scorer()
        docs = self._order(inputs, id)
        spent: list[Any] = []  # generations and scoring runs, for the passes/tokens in the record
        text = ""
        settings = self.settings
        try:
            if inputs.problem:
                raise IFCError(inputs.problem)
            context, first = self._generate(inputs, docs, max_new_tokens)
            spent.append(first)
            text = scorer.decode(first.ids)
            if not first.ids or not text.strip():
                raise ScoringError("empty output")
            best, admitted, candidates = admit(inputs, docs, context, first, spent)
            regenerated = len(admitted) < len(docs)
            if regenerated:
                kept = [d for d in docs if d.id in admitted]
                _, again = self._generate(inputs, kept, max_new_tokens)
                spent.append(again)
                text = scorer.decode(again.ids)
        except Exception as exc:  # the text generated from every document carries the conservative label
            return self._decision(inputs, "enforce", text, start, id, fallback_reason=_reason(exc),
                                  settings=settings, **_cost(spent))
        return self._decision(inputs, "enforce", text, start, id, label=inputs.query_label.join(best),
                              admitted=admitted, candidates=candidates, regenerated=regenerated,
                              settings=settings, **_cost(spent))

    def _generate(self, inputs: _Inputs, docs: list[LabelledSource], max_new_tokens: int
                  ) -> tuple[tuple[int, ...], Generation]:
        """Generate an answer from `docs` only: (context token ids, generation)."""
        context = self.prompt.build(inputs.query.text, docs).ids
        return context, self._need_scorer().generate(context, max_new_tokens)

    def _text(self, output: Output) -> tuple[str, tuple[int, ...] | None]:
        """The output as text, and its exact token ids when it was given as ids."""
        if isinstance(output, str):
            return output, None
        ids = tuple(int(t) for t in output)
        return (self.scorer.decode(ids) if self.scorer else ""), ids


class ConservativePropagator(Propagator):
    """Classic taint tracking: the output gets the join of the query's and every document's label.

    Needs no model to label; `enforce()` needs a scorer to generate.
    """

    name = "conservative"
    needs_scorer = False

    def label(self, query: LabelledSource, documents: Sequence[LabelledSource], output: Output,
              *, id: str | None = None, spans: Mapping[str, tuple[int, int]] | None = None) -> Decision:
        start = time.perf_counter()  # (spans: every span carries the conservative label too)
        _check_call(output=output, id=id)
        inputs = _Inputs(query, documents, self.lattice)
        try:
            text, _ = self._text(output)
        except Exception as exc:  # the label needs no model; only the record's text is lost
            text = ""
            inputs.notes.append(f"output ids not decoded: {_reason(exc)}")
        return self._decision(inputs, "estimate", text, start, id)

    def enforce(self, query: LabelledSource, documents: Sequence[LabelledSource], *,
                max_new_tokens: int = 128, id: str | None = None) -> Decision:
        start = time.perf_counter()
        _check_call(max_new_tokens=max_new_tokens, id=id)
        inputs = _Inputs(query, documents, self.lattice)
        scorer = self._need_scorer()
        gen = scorer.generate(self.prompt.build(query.text, inputs.documents).ids, max_new_tokens)
        return self._decision(inputs, "enforce", scorer.decode(gen.ids), start, id,
                              passes=gen.passes, tokens=gen.tokens)


class PermissivePropagator(Propagator):
    """Labels an output with only the labels of the inputs that influenced it (method.md).

    Candidate labels are ⊥ and the joins of the labels present; the search walks down from the
    join of all document labels, descending only below labels whose restricted context keeps the
    output λ-similar (`Tolerance`), and picks among the minimal ones the lowest score (ties: lower
    rank, then the label's JSON text). Scores are memoized by the induced document set.

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
        self.tolerance = Tolerance.of(tolerance)
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

    def _order(self, inputs: _Inputs, id: str | None) -> list[LabelledSource]:
        if self.doc_order == "original":
            return list(inputs.documents)
        if self.doc_order == "run" and id is not None:
            return self._orders.order(id, inputs)
        return inputs.by_rank()

    def label(self, query: LabelledSource, documents: Sequence[LabelledSource], output: Output,
              *, id: str | None = None, spans: Mapping[str, tuple[int, int]] | None = None) -> Decision:
        def admit(inputs: _Inputs, text: str, ids: tuple[int, ...] | None, spent: list[Any]) -> tuple[Any, ...]:
            scorer = self._need_scorer()
            run = open_run(scorer, ids if ids is not None else scorer.encode(text), self.run_key(id))
            spent.append(run)
            return self._search(inputs, self._order(inputs, id), run, None,
                                spans_of(spans, scorer, run.output_ids, text, inputs.notes))

        return self._estimate(query, documents, output, id, admit)

    def enforce(self, query: LabelledSource, documents: Sequence[LabelledSource], *,
                max_new_tokens: int = 128, id: str | None = None) -> Decision:
        def admit(inputs: _Inputs, docs: list[LabelledSource], prompt: tuple[int, ...],
                  gen: Generation, spent: list[Any]) -> tuple[Any, ...]:
            run = open_run(self._need_scorer(), gen.ids, self.run_key(id))
            spent.append(run)
            return self._search(inputs, docs, run, (prompt, gen))

        return self._safety_wrapper(query, documents, max_new_tokens, id, admit)

    def _search(self, inputs: _Inputs, docs: list[LabelledSource], run: ScoringRun,
                seed: tuple[tuple[int, ...], Generation] | None, masks: Mapping[str, np.ndarray] | None = None
                ) -> tuple[Any, ...]:
        def score(sets: list[frozenset[str]]) -> list[np.ndarray]:
            prompts = [self.prompt.build(inputs.query.text, [d for d in docs if d.id in s]).ids for s in sets]
            return run.score(prompts)

        known = {frozenset(d.id for d in docs): run.seed(*seed)} if seed is not None else {}
        view = token_view(self.prompt, self._need_scorer().decode, inputs.query.text, docs, run.output_ids)
        memo = ScoreMemo(score, known)  # shared with the spans' searches
        found = search_label(inputs, docs, memo, self.tolerance, self.max_candidates, known,
                             budget=self.budget, view=view, notes=inputs.notes, floor=inputs.query_label,
                             prune=self.prune)
        if not masks:
            return found
        return (*found, span_labels(inputs, docs, memo, self.tolerance, masks, budget=self.budget,
                                    max_candidates=self.max_candidates, view=view, floor=inputs.query_label,
                                    prune=self.prune))


def _check_call(*, output: Any = "", max_new_tokens: Any = 1, id: Any = None) -> None:
    """The arguments of `label`/`enforce` besides the inputs (those `_Inputs` checks)."""
    checks.text(id, "id", empty=True, optional=True)
    checks.whole(max_new_tokens, "max_new_tokens")
    if isinstance(output, str):
        return
    if isinstance(output, (bytes, Mapping)) or not isinstance(output, Iterable) or iter(output) is output:
        raise checks.wrong_type("output", "the output as text, or its token ids in a list or tuple", output)
    bad = next((t for t in output if isinstance(t, bool) or not isinstance(t, numbers.Integral)), None)
    if bad is not None:
        raise checks.wrong_type("output", "token ids (whole numbers) when not text", bad)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _cost(spent: Sequence[Any]) -> dict[str, int]:
    """Model passes and tokens of the generations and scoring runs a decision used."""
    return {"passes": sum(x.passes for x in spent), "tokens": sum(x.tokens for x in spent)}
