"""The propagator interface: `Propagator` labels LLM outputs, each entry point returning a
`Decision`, and its two fail-closed skeletons every propagator builds on:

- `_estimate` (estimate mode): label an existing output; any problem or error gives the
  conservative label with the reason recorded;
- `_safety_wrapper` (enforce mode): generate from every document, find the label, regenerate from
  the admitted documents only, so the text released was computed only from inputs at or below
  its label (method.md, step 6).

The propagators themselves: `ConservativePropagator` (`_conservative.py`), `PermissivePropagator`
(`_permissive.py`), `KNNLMPropagator` (`_knn.py`), `IntrospectionPropagator` (`_introspection.py`).
"""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from . import _checks as checks
from ._errors import IFCError, ScoringError
from ._inputs import DecisionInputs, Output, check_call
from ._lattice import Lattice
from ._prompt import ChatPrompt
from ._record import Decision
from .scoring.base import Generation, Scorer, forget_run
from ._sources import LabelledSource

__all__ = ["Output", "Propagator", "cost", "reason"]

_NAMESPACES = itertools.count(1)


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

    def _order(self, inputs: DecisionInputs, id: str | None) -> list[LabelledSource]:
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

    def _decision(self, inputs: DecisionInputs, mode: Literal["estimate", "enforce"], output: str,
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
        check_call(output=output, id=id)
        inputs = DecisionInputs(query, documents, self.lattice)
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
            return self._decision(inputs, "estimate", text, start, id, fallback_reason=reason(exc),
                                  settings=self.settings, **cost(spent))
        return self._decision(inputs, "estimate", text, start, id, label=inputs.query_label.join(best),
                              admitted=admitted, candidates=candidates, settings=self.settings,
                              spans=spans[0] if spans else {}, **cost(spent))

    def _safety_wrapper(self, query: LabelledSource, documents: Sequence[LabelledSource], max_new_tokens: int,
                        id: str | None, admit: Any) -> Decision:
        """Enforce mode, for any way of choosing the label (method.md, step 6).

        Generate from every document (sorted by label rank) with `_generate`; `admit(inputs, docs,
        context_ids, generation, spent)` returns (label L*, admitted ids, candidates), appending
        what it runs to `spent`; regenerate from the admitted documents only. On any error the
        text generated from every document is released with the conservative label.
        """
        start = time.perf_counter()
        check_call(max_new_tokens=max_new_tokens, id=id)
        inputs = DecisionInputs(query, documents, self.lattice)
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
            return self._decision(inputs, "enforce", text, start, id, fallback_reason=reason(exc),
                                  settings=settings, **cost(spent))
        return self._decision(inputs, "enforce", text, start, id, label=inputs.query_label.join(best),
                              admitted=admitted, candidates=candidates, regenerated=regenerated,
                              settings=settings, **cost(spent))

    def _generate(self, inputs: DecisionInputs, docs: list[LabelledSource], max_new_tokens: int
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


def reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def cost(spent: Sequence[Any]) -> dict[str, int]:
    """Model passes and tokens of the generations and scoring runs a decision used."""
    return {"passes": sum(x.passes for x in spent), "tokens": sum(x.tokens for x in spent)}
