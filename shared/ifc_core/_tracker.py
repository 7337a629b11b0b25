"""Per-run label state shared by the framework adapters: every rule they apply lives here.

An adapter translates framework events into these calls, so that both adapters decide alike:

- a run began with the user's request (`begin`), rendered a prompt template (`add_template`);
- it saw a labelled document (`add_document`: the seal is checked here) or a tool result
  (`add_tool_result`: the declared label, or sealed documents of a registered labelled tool);
- an LLM produced an output from a prompt (`label_output`; `enforce` for the enforce wrappers,
  which register their own runs with `register_enforced`);
- a tool is about to be called (`check_call`: bound to the output that produced that very call).

Where each part of a prompt gets its label is `_account.py`, a tool result's pieces `_tool_results.py`;
docs/method.md states the rules.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._account import DocumentView, Known, render_tool_calls
from ._attest import Signer
from ._calls import CallChecks
from ._enforcing import Enforcing
from ._errors import ConfigurationError
from ._gate import RETRIEVER_CHANNEL, Provenance
from ._labelling import Labelling
from ._lattice import as_label
from ._policy import FlowCheck, Policy
from ._propagators import Propagator
from ._record import AuditLog, Decision
from ._registry import resolve_propagator
from ._sources import LabelledSource
from ._tool_results import KEEP as _KEEP
from ._tool_results import ToolResults

__all__ = ["FlowTracker", "RunState", "render_tool_calls"]



@dataclass
class RunState:
    """What one run (or conversation thread) has seen and decided."""

    query: str = ""
    requests: list[str] = field(default_factory=list)
    templates: list[Known] = field(default_factory=list)
    sources: dict[str, LabelledSource] = field(default_factory=dict)
    outputs: list[Known] = field(default_factory=list)
    by_tool_call: dict[str, tuple[str, str, Decision, int]] = field(default_factory=dict)  # + index in its output
    unbound: list[tuple[str, str, Decision, int]] = field(default_factory=list)  # calls proposed with no id
    last: Decision | None = None
    decisions: list[Decision] = field(default_factory=list)
    checks: list[FlowCheck] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # why a source has no trusted label
    unverified: dict[str, str] = field(default_factory=dict)  # text of unregistered documents -> note
    tool_results: dict[str, tuple[str, tuple[DocumentView, ...], Any]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # what a decision must say about a part (labeller failures)
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Bounded(OrderedDict):  # type: ignore[type-arg]
    """A dict that forgets its oldest entries beyond `limit` (what is forgotten becomes ⊤)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


class FlowTracker(Labelling, Enforcing, CallChecks, ToolResults):
    """Labels the outputs of runs and checks their tool calls against a `Policy`.

    State is kept per run key (a root run id or a conversation's thread id), so concurrent runs
    never mix. `query_label` is the label of the user's request (a `Label` or its JSON form).
    `propagator` is an object or a registered name ("conservative", "permissive", "knnlm",
    "introspection"). `signer` checks provenance seals (default: `Signer.session()`).
    `system_prompts` are the application's own system prompt texts: the only text of a system
    message, besides template literals, that counts as the application's (anything else there is ⊤).
    """

    def __init__(self, propagator: Propagator | str, policy: Policy, *, query_label: Any,
                 audit: AuditLog | None = None, max_runs: int = 4096, signer: Signer | None = None,
                 system_prompts: Sequence[str] = ()) -> None:
        if not isinstance(policy, Policy):
            raise ConfigurationError(f"policy: give a Policy, not {type(policy).__name__}")
        if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
            raise ConfigurationError(f"max_runs: give a positive integer, got {max_runs!r}")
        if audit is not None and not isinstance(audit, AuditLog):
            raise ConfigurationError(f"audit: give an AuditLog or None, not {type(audit).__name__}")
        self.policy = policy
        self.lattice = policy.lattice
        self.query_label = as_label(self.lattice, query_label, "query_label")
        self.propagator = resolve_propagator(propagator, lattice=policy.lattice)
        # per-argument labels, where the propagator scores spans (a propagator of another library may not)
        self.takes_spans = "spans" in inspect.signature(self.propagator.label).parameters
        self.audit = audit
        self.max_runs = max_runs
        if isinstance(system_prompts, str) or not all(isinstance(s, str) for s in system_prompts):
            raise ConfigurationError("system_prompts: give a list of the application's system prompt texts")
        self.system_prompts = [Known(s, "template") for s in system_prompts if s.strip()]
        self.provenance = Provenance(self.lattice, signer)
        self.attestor = self.provenance.attestor
        self._runs: OrderedDict[Hashable, RunState] = OrderedDict()
        self._lock = threading.Lock()
        self._by_id = _Bounded(16 * max_runs)  # earlier answers' labels, by message id
        self._by_text = _Bounded(16 * max_runs)  # ... and by content, for frameworks that drop ids
        self._enforced = _Bounded(16 * max_runs)  # runs of the enforce wrappers (never labelled again)
        self._call_labels = _Bounded(16 * max_runs)  # tool-call id -> label of the output that made it
        self._labelled_tools = _Bounded(1024)  # tools seen returning sealed documents
        self._sealed = _Bounded(1024)  # text -> a sealed source seen in any run (found in every prompt)

    # -- runs --------------------------------------------------------------------------------
    def state(self, key: Hashable) -> RunState:
        """The state of run `key`, created on first use.

        Beyond `max_runs`, the oldest *finished* runs are forgotten. A run still going is never
        forgotten, since its next output would be labelled without the sources it saw.
        """
        evicted: list[Hashable] = []
        with self._lock:
            st = self._runs.get(key)
            if st is None:
                st = self._runs[key] = RunState()
                excess = len(self._runs) - self.max_runs
                evicted = [k for k, v in self._runs.items() if v.finished][:max(excess, 0)]
                for old in evicted:
                    del self._runs[old]
        for old in evicted:  # the propagator's per-run state (the scorer's KV caches) goes with the run
            self.propagator.forget(str(old))
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

    def begin(self, key: Hashable, requests: Sequence[str] = ()) -> None:
        """A request starts in run `key` (a thread goes on: it is live again). `requests` are the
        texts the user authored; they carry the query's label wherever they appear."""
        st = self.state(key)
        with st.lock:
            st.finished = False
            for text in requests:
                if isinstance(text, str) and text.strip() and text not in st.requests:
                    st.requests.append(text)
            del st.requests[:-_KEEP]
            if requests and not st.query:
                st.query = "\n".join(t for t in requests if isinstance(t, str))

    def finish(self, key: Hashable) -> None:
        """Run `key` is over: its state stays for inspection until `max_runs` newer runs push it out."""
        with self._lock:
            if key in self._runs:
                self._runs[key].finished = True
        self.propagator.forget(str(key))

    def runs(self) -> list[tuple[Hashable, RunState]]:
        """Every run still held, oldest first, with its state."""
        with self._lock:
            return list(self._runs.items())

    def end(self, key: Hashable) -> RunState | None:
        """Forget run `key`; returns its final state."""
        with self._lock:
            st = self._runs.pop(key, None)
        self.propagator.forget(str(key))
        return st

    def set_query(self, key: Hashable, text: str) -> None:
        """The user's request of run `key` (also a text of known origin)."""
        self.begin(key, [text])
        st = self.state(key)
        with st.lock:
            st.query = text

    def held(self) -> dict[str, int]:
        """How much state is held (for leak checks): runs, and remembered answers and runs."""
        return {"runs": len(self._runs), "answers_by_id": len(self._by_id),
                "answers_by_text": len(self._by_text), "enforced_runs": len(self._enforced)}

    # -- sources -----------------------------------------------------------------------------
    def add_source(self, key: Hashable, source: LabelledSource, *, unlabelled: bool = False,
                   problem: str | None = None) -> LabelledSource:
        """A labelled source the run saw; returns it as held (possibly under a new id).

        A source once seen is never replaced or relabelled downward: the same id with the same
        text keeps the join of its labels; another text under a known id is kept beside it under
        a fresh id (``id#2``, ``id#3``, ... never one already held). `unlabelled=True` (or a
        `problem`) reports that no trusted label was found (the source must carry ⊤).
        """
        unlabelled = unlabelled or problem is not None
        if unlabelled and source.label != self.lattice.top:
            raise ConfigurationError(f"{source.id}: an unlabelled source must carry ⊤")
        label = source.label if source.label is not None else self.lattice.top
        st = self.state(key)
        with st.lock:
            held = next((s for s in st.sources.values() if s.text == source.text
                         and (s.id == source.id or s.id.startswith(source.id + "#"))), None)
            if held is not None and held.id in st.unlabelled and not unlabelled:
                # ⊤ there meant "no trusted label known"; the same text now comes with one
                st.unlabelled.remove(held.id)
                st.problems.pop(held.id, None)
                source = LabelledSource(held.id, held.text, label)
            elif held is not None:
                assert held.label is not None
                source = LabelledSource(held.id, held.text, held.label if unlabelled else held.label.join(label))
            else:
                new_id, n = source.id, 1
                while new_id in st.sources:
                    n += 1
                    new_id = f"{source.id}#{n}"
                source = LabelledSource(new_id, source.text, label)
            st.sources[source.id] = source
            if unlabelled and source.id not in st.unlabelled:
                st.unlabelled.append(source.id)
                st.problems[source.id] = problem or "no trusted label found"
        return source

    def add_document(self, key: Hashable, doc: DocumentView,
                     channels: Sequence[str] = (RETRIEVER_CHANNEL,)) -> LabelledSource | None:
        """A document a retriever returned in run `key`.

        Only a document sealed by a registered labelled retriever (`IFCRetriever`) becomes a
        source of the run, at its label (⊤ when its gate flagged its stored label). Any other
        document is not registered: nothing of it is believed, and wherever its text reaches a
        prompt it is unexplained text, ⊤ (the run notes its id). Returns the source, or None.
        """
        source, problem, sealed = self.provenance.document(doc, tuple(channels))
        if sealed and problem is None:
            self._remember_sealed(source)
        if not sealed:
            st = self.state(key)
            with st.lock:
                st.unverified[source.text.strip()] = f"{source.id}: {problem}"
                while len(st.unverified) > _KEEP:
                    st.unverified.pop(next(iter(st.unverified)))
            return None
        return self.add_source(key, source, problem=problem)

    def add_template(self, key: Hashable, literals: Sequence[str]) -> None:
        """A prompt template rendered in run `key`: its literal text is the application's (query
        label). The values put into it are explained by their own origins."""
        st = self.state(key)
        with st.lock:
            for text in literals:
                if text.strip() and not any(k.text == text for k in st.templates):
                    st.templates.append(Known(text, "template"))
            del st.templates[:-_KEEP]
