"""Enforce mode over a framework's prompt (the part of `FlowTracker` that releases answers
generated only from the parts their label admits; mixed into it): the wrappers' own runs, the
regeneration without withheld parts, and the sink-aware retry."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._account import PromptAccount, PromptMessage, render_tool_calls
from ._record import Decision
from ._sources import LabelledSource

if TYPE_CHECKING:
    from ._tracker import FlowTracker

__all__ = ["Enforcing"]


class Enforcing:
    """Enforce mode: answers released with the label of what they were generated from."""

    def register_enforced(self: FlowTracker, run_id: Hashable) -> None:
        """An enforce wrapper's own run (or its inner model's): its output is recorded by the
        wrapper and must not be labelled again. Only the wrappers call this, with run ids they
        made; nothing in a message or a tag can do it."""
        with self._lock:
            self._enforced.put(run_id, True)

    def is_enforced(self: FlowTracker, run_id: Hashable) -> bool:
        with self._lock:
            return run_id in self._enforced

    def enforce(self: FlowTracker, key: Hashable | None, prompt: Sequence[PromptMessage],
                generate: Callable[[list[str] | None], tuple[str, Sequence[Mapping[str, Any]]]],
                *, message_id: str | None = None, sink_retry: bool = True,
                record_as: Callable[[str, list[Mapping[str, Any]]], Hashable] | None = None
                ) -> tuple[Decision, str, list[Mapping[str, Any]]]:
        """Enforce mode over a framework's prompt: (decision, released content, released calls).

        `generate(None)` answers the prompt as it is; `generate(texts)` answers it with each
        message's text replaced by `texts[i]` (the withheld parts removed, see
        `PromptAccount.render`). The answer is released with label L* (method.md, step 6): if the
        search withholds parts, it is generated again without them. With `sink_retry`, an answer
        that calls a tool whose sink its label exceeds is generated once more with every part
        above that sink withheld, so the agent can still do what it may; if that one still calls
        the tool above its sink, the call is refused when checked. Every regeneration is in
        ``decision.regenerations``. A run this tracker does not know (no handler attached) has
        nothing registered: its answer is ⊤. The decision is recorded under
        ``record_as(content, calls)`` of the released answer (default `key`).
        """
        content, calls = generate(None)
        calls = list(calls)
        text = render_tool_calls(content, calls)
        if key is None or self.get(key) is None:
            return self.top_decision(text, "no IFC handler is attached to this run: nothing is registered, so "
                                     "the answer is ⊤ (attach the handler to the run's callbacks)"), content, calls
        acc = self.account(key, prompt)
        question, parts, notes = self._inputs(key, acc)
        decision = self.propagator.label(question, parts, text, id=str(key))
        decision.notes.extend(notes)
        if decision.fallback_reason is None:
            if decision.withheld:
                content, calls = generate(acc.render(set(decision.withheld)))
                calls = list(calls)
                decision.regenerations.append({"withheld": list(decision.withheld), "model_calls": 1,
                                               "why": f"the label search admits only parts up to {decision.label}"})
            if sink_retry:
                content, calls = self._sink_retry(decision, acc, question, parts, content, list(calls), generate)
        decision.regenerated = bool(decision.regenerations)
        decision.output = render_tool_calls(content, calls)
        decision.mode = "enforce"
        target = record_as(content, calls) if record_as is not None else key
        self.record(target, decision, calls, content=content, message_id=message_id)
        if target != key:  # the answer's run sees what its request saw (a reviewer's edit is checked there)
            st = self.get(key)
            with st.lock:
                sources = list(st.sources.values())
            for source in sources:
                self.add_source(target, source)
        return decision, content, calls

    def _sink_retry(self: FlowTracker, decision: Decision, acc: PromptAccount, question: LabelledSource,
                    parts: list[LabelledSource], content: str, calls: list[Mapping[str, Any]],
                    generate: Callable[[list[str] | None], tuple[str, Sequence[Mapping[str, Any]]]]
                    ) -> tuple[str, list[Mapping[str, Any]]]:
        """One more generation for calls whose sink the label exceeds (see `enforce`)."""
        sinks = {str(c.get("name")): self.policy.sink(str(c.get("name"))) for c in calls}
        over = [c for c in calls if (s := sinks[str(c.get("name"))]) is not None and not decision.label <= s]
        if not over:  # (a call to a tool with no sink is refused whatever is withheld)
            return content, calls
        sink = self.lattice.meet_all(s for c in over if (s := sinks[str(c.get("name"))]) is not None)
        assert question.label is not None
        if not question.label <= sink:  # what is always shown is already above the sink: nothing to gain
            return content, calls
        kept = [p for p in parts if p.label is not None and p.label <= sink]
        withheld = [p.id for p in parts if p not in kept]
        content, calls = generate(acc.render(set(withheld)))
        tools = sorted({str(c.get("name")) for c in over})
        decision.regenerations.append({"withheld": withheld, "model_calls": 1,
                                       "why": f"a call to {tools} needs a label at most {sink}; the answer was {decision.label}"})
        decision.label = self.lattice.join_all([question.label, *(p.label for p in kept if p.label is not None)])
        decision.admitted, decision.withheld = [p.id for p in kept], withheld
        return content, list(calls)
