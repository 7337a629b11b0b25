"""Per-run label state shared by the framework adapters: every rule they apply lives here.

An adapter translates framework events into these calls, so that both adapters decide alike:

- a run began with the user's request (`begin`), rendered a prompt template (`add_template`);
- it saw a labelled document (`add_document`: the seal is checked here) or a tool result
  (`add_tool_result`: the declared label, or sealed documents of a registered labelled tool);
- an LLM produced an output from a prompt (`label_output`; `enforce` for the enforce wrappers,
  which register their own runs with `register_enforced`);
- a tool is about to be called (`check_call`: bound to the output that produced that very call).

Where each part of a prompt gets its label is `_account.py`; docs/method.md states the rules.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._account import DocumentView, Known, join_text, locate, missing_items, render_tool_calls
from ._attest import ATTEST_KEY, Signer
from ._calls import CallChecks
from ._errors import ConfigurationError
from ._gate import RETRIEVER_CHANNEL, Provenance
from ._items import labelled_items
from ._labelling import Labelling
from ._lattice import Label, Lattice, as_label
from ._policy import FlowCheck, Policy
from ._propagators import Propagator
from ._record import AuditLog, Decision
from ._registry import resolve_propagator
from ._sources import LabelledSource

__all__ = ["FlowTracker", "RunState", "render_tool_calls"]

_KEEP = 256  # texts of known origin kept per run (older ones are forgotten: their text becomes ⊤)


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


def _quoted(lattice: Lattice, piece: str, sealed: Sequence[LabelledSource]) -> Label:
    """The join of the labels of the sealed sources `piece` quotes whole (a source's label belongs
    to its text: a tool that echoes a sealed document hands back its label too); ⊥ if none."""
    return lattice.join_all(s.label for s in sealed if s.label is not None and s.text in piece)


class FlowTracker(Labelling, CallChecks):
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

    def tool_pieces(self, tool: str, content: str, result_id: str, documents: Sequence[DocumentView] = (),
                    key: Hashable | None = None, result: Any = None, notes: list[str] | None = None,
                    *, call_label: Label | None = None) -> list[tuple[str, str, Label]]:
        """A tool result split by origin: (text piece, part id, label), covering `content`.

        Documents count only when the tool is a registered labelled tool (a labelled retriever
        tool's own seal, or `Policy.labelled_tools`) and their seals verify; each is joined with
        the tool's declared result label when it has one. When the policy registers a labeller
        for the tool, it labels the structured `result` (or `content` when there is none) item by
        item; each item, found in `content`, is a part of its own (``tool:<tool>:<id>/<path>``).
        If labelling fails (see `_items.py`), no item counts and `notes` gets the reason. The rest
        of the text the model saw carries the declared label (⊤ when undeclared); for a labelled
        tool, whose declared label is a floor for its documents and never a substitute for them,
        the rest is ⊤, and it is joined with the labels of its documents that the text does not
        show verbatim. Every piece is joined with the label of the call it answers, when known: a
        tool's result depends on the arguments it was given.
        """
        declared = self.policy.declared_result(tool)
        fallback = declared if declared is not None else self.lattice.top
        channels = self.policy.labelled_channels(tool)
        # the label of the call this result answers: as recorded, and as the prompt's answer that made it
        # shows it (its recorded or sealed label, ⊤ when unknown: a thread resumed in another process)
        call = self.label_of_answered_call(result_id, key)
        floor = self.lattice.join_all(x for x in (call, call_label) if x is not None)
        known = []
        for doc in documents:
            source, problem, sealed = self.provenance.document(doc, channels)
            if sealed and problem is None and source.label is not None:
                self._remember_sealed(source)
                label = source.label if declared is None else source.label.join(declared)
                known.append(Known(source.text, "source", label, source.id))
        # a result whose documents carry seals is a labelled tool's, verified or not (a seal that fails, in
        # another process say, is no reason to trust the rest of its text more), and so is a tool seen
        # returning verified documents before
        claims = any(ATTEST_KEY in (d.metadata or {}) for d in documents)
        labelled = self._was_labelled(tool, bool(known)) or claims or tool in self.policy.labelled_tools
        rest_label = self.lattice.top if labelled or declared is None else declared
        rest = f"tool:{tool}:{result_id}"
        labeller, items = self.policy.labeller(tool), []
        if labeller is not None:
            items, problem = labelled_items(labeller, content if result is None else result, content, self.lattice, rest)
            if problem is not None and notes is not None:
                notes.append(f"{rest}: {problem}; the whole result carries its fallback label {fallback}")
        located = locate(content, known, items)
        if missing_items(located, items):  # an item's only occurrences are inside others: fail closed
            if notes is not None:
                notes.append(f"{rest}: an item of the labeller could not be placed apart from the others; the whole "
                             f"result carries its fallback label {fallback}")
            located = locate(content, known)
        pieces, shown = [], set()
        for piece, origin in located:
            if origin is not None:
                assert origin.label is not None and origin.part is not None
                pieces.append((piece, origin.part, origin.label))
                shown.add(origin.part)
            else:
                pieces.append((piece, "", rest_label))
        unshown = self.lattice.join_all(k.label for k in known if k.part not in shown and k.label is not None)
        sealed = [s for s in self.sealed_sources() if s.label is not None and s.text.strip()]
        return [(piece, part or (rest if piece.strip() else ""),
                 (label if part else label.join(unshown)).join(floor).join(_quoted(self.lattice, piece, sealed)))
                for piece, part, label in pieces]

    def _remember_sealed(self, source: LabelledSource) -> None:
        """A sealed source's label belongs to its text, in any run: found in later prompts too."""
        with self._lock:
            old = self._sealed.get(source.text)
            if old is not None and old.label is not None and source.label is not None:
                source = LabelledSource(old.id, source.text, old.label.join(source.label))
            self._sealed.put(source.text, source)

    def sealed_sources(self) -> list[LabelledSource]:
        """The sealed sources this tracker remembers across runs (newest last)."""
        with self._lock:
            return list(self._sealed.values())

    def _was_labelled(self, tool: str, now: bool) -> bool:
        """Whether `tool` has returned sealed documents in this tracker (remembered from now on)."""
        with self._lock:
            if now:
                self._labelled_tools.put(tool, True)
            return tool in self._labelled_tools

    def label_of_answered_call(self, call_id: str | None, key: Hashable | None = None) -> Label | None:
        """The label of the output that made call `call_id`: in run `key` when it has it, else in
        any run this tracker recorded (None when unknown)."""
        if not call_id:
            return None
        st = self.get(key) if key is not None else None
        if st is not None:
            with st.lock:
                entry = st.by_tool_call.get(str(call_id))
            if entry is not None:
                return entry[2].label
        with self._lock:
            return self._call_labels.get(str(call_id))

    def add_tool_result(self, key: Hashable, tool: str, content: str, result_id: str,
                        documents: Sequence[DocumentView] = (), result: Any = None) -> list[LabelledSource]:
        """A tool's result, by origin (see `tool_pieces`): never labelled by its content. `result`
        is the tool's structured result, for the policy's labeller (kept for later prompts that
        show the result without it)."""
        st = self.state(key)
        keep = result if self.policy.labeller(tool) is not None else None
        with st.lock:
            st.tool_results[str(result_id)] = (tool, tuple(documents), keep)
            while len(st.tool_results) > _KEEP:
                st.tool_results.pop(next(iter(st.tool_results)))
        notes: list[str] = []
        parts: dict[str, tuple[str, Label]] = {}  # one source per part (the pieces of a part joined)
        for piece, part, label in self.tool_pieces(tool, content, str(result_id), documents, key, result, notes):
            if part:
                old = parts.get(part)
                parts[part] = (piece.strip(), label) if old is None else (join_text(old[0], piece), old[1].join(label))
        with st.lock:
            for note in notes:
                st.notes[f"tool:{tool}:{result_id}"] = note
            while len(st.notes) > _KEEP:
                st.notes.pop(next(iter(st.notes)))
        return [self.add_source(key, LabelledSource(part, text, label)) for part, (text, label) in parts.items()]

    def add_template(self, key: Hashable, literals: Sequence[str]) -> None:
        """A prompt template rendered in run `key`: its literal text is the application's (query
        label). The values put into it are explained by their own origins."""
        st = self.state(key)
        with st.lock:
            for text in literals:
                if text.strip() and not any(k.text == text for k in st.templates):
                    st.templates.append(Known(text, "template"))
            del st.templates[:-_KEEP]
