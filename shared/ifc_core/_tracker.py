"""Per-run label state shared by the framework adapters.

An adapter translates framework events into four calls: a run saw a labelled source
(`add_source`, `add_tool_result`), an LLM produced an output (`label_output`), a tool is about
to be called (`check_call`). Every rule lives here, so both adapters decide identically.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._lattice import Label
from ._policy import FlowCheck, IFCViolation, Policy
from ._propagators import Propagator
from ._registry import resolve_propagator
from ._record import AuditLog, Decision
from ._sources import LabelledSource

__all__ = ["FlowTracker", "RunState", "render_tool_calls"]


def render_tool_calls(content: str, tool_calls: Sequence[Mapping[str, Any]]) -> str:
    """The text scored for an output that calls tools: its content, then each call in plain words.

    Plain words ("Calling send_email with to=...; body=...") rather than JSON: a language model
    scores prose far less noisily than JSON syntax, whose tokens carry no information about the
    sources but add per-token variance.
    """
    def value(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)

    calls = [f"Calling {c.get('name')} with " + "; ".join(f"{k}={value(v)}" for k, v in (c.get("args") or {}).items())
             for c in tool_calls]
    return "\n".join([content.strip(), *calls]).strip()


@dataclass
class RunState:
    """What one run (or conversation) has seen and decided."""

    query: str = ""
    sources: dict[str, LabelledSource] = field(default_factory=dict)
    by_tool_call: dict[str, Decision] = field(default_factory=dict)
    last: Decision | None = None
    decisions: list[Decision] = field(default_factory=list)
    checks: list[FlowCheck] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class FlowTracker:
    """Labels the outputs of runs and checks their tool calls against a `Policy`.

    State is kept per run key (a root run id or a conversation's thread id), so concurrent runs
    never mix their sources. `query_label` is the label of the user's request; it is required
    because an unlabelled request would be ⊤. `propagator` is an object or a registered name
    (`PROPAGATORS`: "conservative", "permissive", "knnlm", "introspection").
    """

    def __init__(self, propagator: Propagator | str, policy: Policy, *, query_label: Label,
                 audit: AuditLog | None = None, max_runs: int = 4096) -> None:
        if query_label.lattice != policy.lattice:
            raise ValueError("query_label and policy must use the same lattice")
        self.propagator = resolve_propagator(propagator, lattice=policy.lattice)
        self.policy = policy
        self.lattice = policy.lattice
        self.query_label = query_label
        self.audit = audit
        self.max_runs = max_runs
        self._runs: OrderedDict[Hashable, RunState] = OrderedDict()
        self._lock = threading.Lock()

    def state(self, key: Hashable) -> RunState:
        """The state of run `key`, created on first use.

        Beyond `max_runs`, the oldest *finished* runs are forgotten. A run still going is never
        forgotten, since its next output would be labelled without the sources it saw.
        """
        with self._lock:
            st = self._runs.get(key)
            if st is None:
                st = self._runs[key] = RunState()
                excess = len(self._runs) - self.max_runs
                for old in [k for k, v in self._runs.items() if v.finished][:max(excess, 0)]:
                    del self._runs[old]
            return st

    def get(self, key: Hashable) -> RunState | None:
        """The state of run `key` if it is held (read-only use: creates nothing)."""
        with self._lock:
            return self._runs.get(key)

    def sources(self, key: Hashable | None) -> list[LabelledSource]:
        """The labelled sources run `key` has seen so far (none for an unknown run)."""
        st = self.get(key) if key is not None else None
        if st is None:
            return []
        with st.lock:
            return list(st.sources.values())

    def finish(self, key: Hashable) -> None:
        """Run `key` is over: its state stays for inspection until `max_runs` newer runs push it out."""
        with self._lock:
            if key in self._runs:
                self._runs[key].finished = True

    def runs(self) -> list[tuple[Hashable, RunState]]:
        """Every run still held, oldest first, with its state."""
        with self._lock:
            return list(self._runs.items())

    def end(self, key: Hashable) -> RunState | None:
        """Forget run `key`; returns its final state."""
        with self._lock:
            return self._runs.pop(key, None)

    def set_query(self, key: Hashable, text: str) -> None:
        st = self.state(key)
        with st.lock:
            st.query = text

    def add_source(self, key: Hashable, source: LabelledSource, *, unlabelled: bool = False) -> None:
        """A labelled document the run saw (labels from trusted registration only).

        `unlabelled=True` reports that the store had no valid label for it (it must carry ⊤).
        """
        if unlabelled and source.label != self.lattice.top:
            raise ValueError(f"{source.id}: an unlabelled source must carry ⊤")
        st = self.state(key)
        with st.lock:
            # An id clash must never let one source replace another (a public twin of a secret):
            # a different source under a known id is kept beside it as "id#2", "id#3", ...
            twins = [i for i in st.sources if i == source.id or i.startswith(source.id + "#")]
            same = next((i for i in twins if (st.sources[i].text, st.sources[i].label) == (source.text, source.label)), None)
            if same is None:
                if twins:
                    source = LabelledSource(f"{source.id}#{len(twins) + 1}", source.text, source.label)
                st.sources[source.id] = source
            if unlabelled and source.id not in st.unlabelled:
                st.unlabelled.append(source.id)

    def add_tool_result(self, key: Hashable, tool: str, text: str, result_id: str) -> LabelledSource:
        """A tool's result, labelled by the policy's declaration for that tool (never by its content)."""
        source = LabelledSource(f"tool:{tool}:{result_id}", text, self.policy.result_label(tool))
        self.add_source(key, source)
        return source

    def label_output(self, key: Hashable, content: str, tool_calls: Sequence[Mapping[str, Any]] = (),
                     *, query: str | None = None) -> Decision:
        """Label an LLM output of run `key` (estimate mode) from the sources that run saw."""
        st = self.state(key)
        with st.lock:
            sources = list(st.sources.values())
            question = query if query is not None else st.query
            unlabelled = list(st.unlabelled)
        text = render_tool_calls(content, tool_calls)
        decision = self.propagator.label(LabelledSource("query", question or "(no question)", self.query_label),
                                         sources, text, id=str(key))
        decision.notes.extend(f"{i}: stored label missing or unparseable, treated as ⊤" for i in unlabelled)
        return self.record(key, decision, tool_calls)

    def record(self, key: Hashable, decision: Decision, tool_calls: Sequence[Mapping[str, Any]] = ()) -> Decision:
        """Keep a decision as the label of run `key`'s latest output (and of its tool calls)."""
        st = self.state(key)
        with st.lock:
            st.last = decision
            st.decisions.append(decision)
            for call in tool_calls:
                if call.get("id"):
                    st.by_tool_call[str(call["id"])] = decision
        if self.audit:
            self.audit.write(decision)
        return decision

    def label_of_call(self, key: Hashable, tool_call_id: str | None) -> tuple[Label, Decision | None]:
        """The label of the output that produced a tool call; ⊤ when no output is known."""
        st = self.state(key)
        with st.lock:
            decision = st.by_tool_call.get(str(tool_call_id)) if tool_call_id else None
            decision = decision or st.last
        return (decision.label if decision else self.lattice.top), decision

    def decision_for_call(self, tool_call_id: str) -> Decision | None:
        """The decision that labelled the output which made tool call `tool_call_id` (newest run first)."""
        for _, st in reversed(self.runs()):
            with st.lock:
                if tool_call_id in st.by_tool_call:
                    return st.by_tool_call[tool_call_id]
        return None

    def check_call(self, key: Hashable, tool: str, args: Mapping[str, Any] | None,
                   tool_call_id: str | None = None, *, raise_on_violation: bool = False) -> FlowCheck:
        """Check a tool call against the policy; record it; optionally raise `IFCViolation`."""
        label, decision = self.label_of_call(key, tool_call_id)
        check = self.policy.check(tool, label, args, tool_call_id=tool_call_id)
        st = self.state(key)
        with st.lock:
            st.checks.append(check)
        if not check.allowed:
            if self.audit:
                self.audit.write({"event": "ifc.violation", "run": str(key), **check.to_dict()})
            if raise_on_violation:
                raise IFCViolation(check, decision)
        return check
