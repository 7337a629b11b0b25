"""`ConservativePropagator`: classic taint tracking, the baseline every permissive label is
compared with."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from ._inputs import DecisionInputs, Output, check_call
from ._propagators import Propagator, reason
from ._record import Decision
from ._sources import LabelledSource

__all__ = ["ConservativePropagator"]


class ConservativePropagator(Propagator):
    """Classic taint tracking: the output gets the join of the query's and every document's label.

    Needs no model to label; `enforce()` needs a scorer to generate.
    """

    name = "conservative"
    needs_scorer = False

    def label(self, query: LabelledSource, documents: Sequence[LabelledSource], output: Output,
              *, id: str | None = None, spans: Mapping[str, tuple[int, int]] | None = None) -> Decision:
        start = time.perf_counter()  # (spans: every span carries the conservative label too)
        check_call(output=output, id=id)
        inputs = DecisionInputs(query, documents, self.lattice)
        try:
            text, _ = self._text(output)
        except Exception as exc:  # the label needs no model; only the record's text is lost
            text = ""
            inputs.notes.append(f"output ids not decoded: {reason(exc)}")
        return self._decision(inputs, "estimate", text, start, id)

    def enforce(self, query: LabelledSource, documents: Sequence[LabelledSource], *,
                max_new_tokens: int = 128, id: str | None = None) -> Decision:
        start = time.perf_counter()
        check_call(max_new_tokens=max_new_tokens, id=id)
        inputs = DecisionInputs(query, documents, self.lattice)
        scorer = self._need_scorer()
        gen = scorer.generate(self.prompt.build(query.text, inputs.documents).ids, max_new_tokens)
        return self._decision(inputs, "enforce", scorer.decode(gen.ids), start, id,
                              passes=gen.passes, tokens=gen.tokens)
