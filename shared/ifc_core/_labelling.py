"""Labelling outputs from the prompt that produced them (the part of `FlowTracker` that decides
labels; mixed into it, and using its run state). Enforce mode is `_enforcing.py`."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._account import Known, PromptAccount, PromptMessage, account_prompt, render_call_spans, render_tool_calls
from ._attest import digest
from ._lattice import Label
from ._record import Decision
from ._sources import LabelledSource
from ._telemetry import report_decision
from ._tool_results import KEEP as _KEEP

if TYPE_CHECKING:
    from ._tracker import FlowTracker, RunState

__all__ = ["Labelling", "OUTPUT_CHANNEL", "REQUEST_CHANNEL", "IFC_META_KEY"]

OUTPUT_CHANNEL = "output"
REQUEST_CHANNEL = "request"  # a user turn an adapter saw arrive as the request of a run
IFC_META_KEY = "ifc"  # where an enforce wrapper's answer carries its sealed label
_MAX_DECISIONS = 1024  # per run; older decisions are dropped from the run's list (the audit log keeps them)


def _output_part(message_id: str | None, rendered: str) -> str:
    # by content, not by message id: the id is shown to the scorer, and framework ids are random
    return f"answer-{digest(rendered.strip())[:8]}"


class _Origins:
    """What run `st` knows, as `account_prompt` asks for it."""

    def __init__(self, tracker: FlowTracker, key: Hashable | None) -> None:
        self.tracker, self.key = tracker, key
        self.st: RunState | None = tracker.get(key) if key is not None else None
        self.top = tracker.lattice.top
        self.notes: list[str] = []

    def known(self) -> list[Known]:
        """The run's sources, answers, requests and templates; the application's system prompts;
        and every sealed source the tracker saw in another run (a source's label belongs to its
        text, so a prompt that quotes it verbatim is labelled by it whichever run retrieved it)."""
        known = list(self.tracker.system_prompts)
        texts: set[str] = set()
        st = self.st
        if st is not None:
            with st.lock:
                known += [Known(s.text, "source", s.label, s.id) for s in st.sources.values() if s.label is not None]
                known += st.outputs + st.templates
                known += [Known(t, "request") for t in st.requests]
                texts = {s.text for s in st.sources.values()}
        known += [Known(s.text, "source", s.label, f"{s.id}~{digest(s.text)[:6]}")
                  for s in self.tracker.sealed_sources() if s.text not in texts and s.label is not None]
        return known

    def assistant(self, message: PromptMessage) -> tuple[str, Label]:
        rendered = render_tool_calls(message.text, message.tool_calls)
        label = self.tracker.answer_label(message)
        if label is None:
            self.notes.append(f"an earlier answer ({(message.id or rendered)[:40]!r}) has no recorded label; treated as ⊤")
            label = self.top
        return _output_part(message.id, rendered), label

    def tool(self, message: PromptMessage, call_label: Label) -> list[tuple[str, str, Label]]:
        """A tool message by its tool's rules; a framework that drops the tool's name, its
        documents or its structured result from the message (LlamaIndex) is completed from what
        the run recorded for that tool call."""
        result_id = message.tool_call_id or digest(message.text)[:12]
        recorded_name, recorded_docs, recorded_result = None, (), None
        if self.st is not None and message.tool_call_id:
            with self.st.lock:
                recorded_name, recorded_docs, recorded_result = self.st.tool_results.get(
                    message.tool_call_id, (None, (), None))
        name = message.tool_name or recorded_name or "unknown"
        result = message.result if message.result is not None else recorded_result
        return self.tracker.tool_pieces(name, message.text, result_id, message.documents or recorded_docs,
                                        self.key, result, self.notes, call_label=call_label)


class Labelling:
    """Outputs: their labels from the prompt's parts, their records, and enforce mode."""

    def account(self: FlowTracker, key: Hashable | None, prompt: Sequence[PromptMessage]) -> PromptAccount:
        """`prompt` split by origin with what run `key` knows (see `_account.py`)."""
        origins = _Origins(self, key)
        acc = account_prompt(prompt, origins)
        acc.notes.extend(origins.notes)
        return acc

    def _inputs(self: FlowTracker, key: Hashable, acc: PromptAccount) -> tuple[LabelledSource, list[LabelledSource], list[str]]:
        """The decision's inputs: the always-shown text at the query label joined with the labels of
        the run's sources that the prompt does not show verbatim (they cannot be withheld, so they
        always count), and the prompt's withholdable parts."""
        st = self.get(key)
        notes = list(acc.notes)
        floor = self.query_label
        if st is not None:
            with st.lock:
                pinned = [s for s in st.sources.values() if s.id not in acc.parts]
                unlabelled = [f"{i}: {st.problems.get(i, 'no trusted label found')}" for i in st.unlabelled
                              if i in acc.parts or i in {s.id for s in pinned}]
                unverified = dict(st.unverified)
            for s in pinned:
                assert s.label is not None
                floor = floor.join(s.label)
                notes.append(f"{s.id}: not found verbatim in the prompt; its label always counts")
            notes.extend(f"{note}, treated as ⊤" for note in unlabelled)
            shown = [p.text for p in acc.parts.values() if p.id.startswith("unexplained:")]
            notes.extend(f"{note}; its text is unexplained, treated as ⊤" for text, note in unverified.items()
                         if any(text in s or s in text for s in shown))
        return LabelledSource("query", acc.question, floor), list(acc.parts.values()), notes

    def label_output(self: FlowTracker, key: Hashable, content: str, tool_calls: Sequence[Mapping[str, Any]] = (),
                     *, prompt: Sequence[PromptMessage] | None = None, query: str | None = None,
                     message_id: str | None = None) -> Decision:
        """Label an LLM output of run `key` (estimate mode) from the prompt that produced it.

        Without `prompt`, the run's sources are the documents and its request the question. Each
        tool call's line and argument values are scored as spans of their own (per-argument
        labels, `Decision.call_labels`), where the propagator can.
        """
        text, spans = render_call_spans(content, tool_calls)
        if prompt is not None:
            question, parts, notes = self._inputs(key, self.account(key, prompt))
        else:
            st = self.state(key)
            with st.lock:
                parts, asked = list(st.sources.values()), query if query is not None else st.query
                notes = [f"{i}: {st.problems.get(i, 'no trusted label found')}, treated as ⊤" for i in st.unlabelled]
                notes += list(st.notes.values())
            question = LabelledSource("query", asked or "(no question)", self.query_label)
        decision = self.propagator.label(question, parts, text, id=str(key), **({"spans": spans} if spans and self.takes_spans else {}))
        decision.notes.extend(notes)
        return self.record(key, decision, tool_calls, content=content, message_id=message_id)

    def top_decision(self: FlowTracker, output: str, reason: str, mode: str = "enforce") -> Decision:
        """A decision at ⊤ for an output whose inputs are not known (`reason` says why)."""
        top = self.lattice.top
        return Decision(id=None, mode=mode, propagator=self.propagator.name, label=top,  # type: ignore[arg-type]
                        conservative_label=top, query_label=self.query_label, output=output,
                        admitted=[], withheld=[], fallback_reason=reason)

    def record(self: FlowTracker, key: Hashable, decision: Decision, tool_calls: Sequence[Mapping[str, Any]] = (),
               *, content: str | None = None, message_id: str | None = None) -> Decision:
        """Keep a decision as the label of run `key`'s output (and of the tool calls it made)."""
        from ._calls import args_key

        rendered = render_tool_calls(content or "", tool_calls)
        st = self.state(key)
        with st.lock:
            st.last = decision
            st.decisions.append(decision)
            del st.decisions[:-_MAX_DECISIONS]
            for index, call in enumerate(tool_calls):
                entry = (str(call.get("name")), args_key(call.get("args")), decision, index)
                if call.get("id"):
                    st.by_tool_call[str(call["id"])] = entry
                else:
                    st.unbound.append(entry)
        with self._lock:
            for call in tool_calls:
                if call.get("id"):
                    old = self._call_labels.get(str(call["id"]))
                    self._call_labels.put(str(call["id"]), decision.label if old is None else old.join(decision.label))
            del st.unbound[:-_KEEP]
            if content and content.strip():
                st.outputs.append(Known(content, "output", decision.label, _output_part(message_id, rendered)))
                del st.outputs[:-_KEEP]
        if rendered:
            self._remember(message_id, rendered, decision.label)
        report_decision(key, decision)
        if self.audit:
            self.audit.write(decision)
        return decision

    def record_answer(self: FlowTracker, key: Hashable, text: str, label: Label) -> None:
        """Another text under which the framework shows an answer already recorded in run `key`
        (a ReAct agent rewrites its steps), with that answer's label."""
        st = self.state(key)
        with st.lock:
            st.outputs.append(Known(text, "output", label, _output_part(None, text)))
            del st.outputs[:-_KEEP]
        self._remember(None, text, label)

    def _remember(self: FlowTracker, message_id: str | None, rendered: str, label: Label) -> None:
        with self._lock:
            for book, k in ((self._by_id, message_id and f"{message_id}:{digest(rendered.strip())}"),
                            (self._by_text, rendered.strip())):
                if k:
                    old = book.get(k)
                    book.put(k, label if old is None else old.join(label))

    def answer_label(self: FlowTracker, message: PromptMessage) -> Label | None:
        """The recorded label of an earlier answer: its enforce wrapper's seal, else what this
        tracker recorded for its id or its content; None when unknown."""
        rendered = render_tool_calls(message.text, message.tool_calls)
        seal = message.seal
        if isinstance(seal, Mapping) and "label" in seal:
            try:
                label = self.lattice.label(seal["label"])
            except ValueError:
                label = None
            if label is not None and self.attestor.check(seal.get("seal"), (OUTPUT_CHANNEL,), "", rendered, label):
                return label
        with self._lock:
            found = [b.get(k) for b, k in ((self._by_id, message.id and f"{message.id}:{digest(rendered.strip())}"),
                                           (self._by_text, rendered.strip())) if k]
        found = [f for f in found if f is not None]
        return self.lattice.join_all(found) if found else None

    def seal_output(self: FlowTracker, content: str, tool_calls: Sequence[Mapping[str, Any]], label: Label) -> dict[str, Any]:
        """The sealed label an enforce wrapper puts on its answer (``response_metadata["ifc"]``)."""
        rendered = render_tool_calls(content, tool_calls)
        return {"label": label.to_json(), "seal": self.attestor.seal(OUTPUT_CHANNEL, "", rendered, label)}

    def seal_request(self: FlowTracker, text: str) -> str:
        """The seal an adapter puts on a user turn it saw arrive as a run's request, so that later
        model calls (and a resumed thread) can tell the user's turns from text that a tool, a
        middleware or a state update put into the conversation as a user message."""
        return self.attestor.seal(REQUEST_CHANNEL, "", text, self.query_label)

    def is_request(self: FlowTracker, text: str, seal: object) -> bool:
        """Whether `seal` is this tracker's request seal of `text` (`seal_request`)."""
        return self.attestor.check(seal, (REQUEST_CHANNEL,), "", text, self.query_label)

    def answer_of(self: FlowTracker, key: Hashable | None, answer: str | None) -> tuple[Label | None, Decision | None]:
        """The label of what run `key` returned, and the decision it is: the output whose text is
        `answer` (outputs with the same text: the join of their labels, the last one's record).
        An answer that is no output as produced (a chain joined or rewrote outputs, returned a
        tool's result or documents) carries the join of every decision and every source of the
        run, with no single record. (None, None) when the run labelled nothing."""
        decisions = self.decisions_of(key)
        if not decisions:
            return None, None
        same = [d for d in decisions if answer is not None and answer.strip() and d.output.strip() == answer.strip()]
        if same:
            return self.lattice.join_all(d.label for d in same), same[-1]
        st = self.get(key)
        with st.lock:  # (a run with decisions has state)
            sources = [s.label if s.label is not None else self.lattice.top for s in st.sources.values()]
        return self.lattice.join_all([*(d.label for d in decisions), *sources]), None

    def decisions_of(self: FlowTracker, key: Hashable | None) -> list[Decision]:
        """The decisions run `key` holds (none for an unknown run)."""
        st = self.get(key) if key is not None else None
        if st is None:
            return []
        with st.lock:
            return list(st.decisions)

    def adopt_sealed(self: FlowTracker, key: Hashable, message: PromptMessage) -> Decision | None:
        """Record, as run `key`'s decision, the label an answer produced elsewhere carries: its
        seal (or what this tracker recorded for its content). None, and nothing recorded, when
        neither holds: its calls are then checked as ⊤."""
        label = self.answer_label(message)
        if label is None:
            return None
        text = render_tool_calls(message.text, message.tool_calls)
        decision = Decision(id=str(key), mode="estimate", propagator="recorded", label=label,
                            conservative_label=label, query_label=self.query_label, output=text, admitted=[],
                            withheld=[], notes=["label recorded when the answer was produced (its seal)"])
        st = self.state(key)
        with st.lock:
            st.finished = True
        return self.record(key, decision, message.tool_calls)
