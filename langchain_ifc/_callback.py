"""`IFCCallbackHandler`: label tracking and tool-call enforcement for existing chains and agents."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Hashable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from ifc_core import AuditLog, Decision, FlowTracker, IFCViolation, Label, LabelCodec, Policy, Propagator

from ._convert import document_source, question_of, run_key, text_of

__all__ = ["IFCCallbackHandler", "ifc_session", "INTERNAL_TAG"]

INTERNAL_TAG = "ifc_internal"  # runs inside IFCChatModel; it records their decision itself


def _emit(name: str, data: dict[str, Any]) -> None:
    """Dispatch a LangChain custom event when inside a run (tracing tools see it)."""
    with contextlib.suppress(Exception):  # outside a run there is no parent to attach it to
        dispatch_custom_event(name, data)


class IFCCallbackHandler(BaseCallbackHandler):
    """Adds labels to a chain or agent you already have: ``config={"callbacks": [handler]}``.

    It collects the labelled sources each run sees (retriever results; tool results, labelled by
    the policy's declaration for that tool), labels every LLM output with the propagator in
    estimate mode, and checks each tool call against the policy. With ``enforce=True`` (default)
    a call whose input label does not flow to the tool's sink raises `IFCViolation` before the
    tool runs; with ``enforce=False`` violations are only recorded and dispatched.

    State is kept per root run, or per ``thread_id`` when the run has one, so concurrent runs
    never mix. Every decision goes to the audit log (if given) and is dispatched as the custom
    event ``ifc.label``; violations as ``ifc.violation``.

    This is a synchronous handler on purpose: an async handler cannot stop a synchronous tool
    (LangChain swallows its exceptions), while a sync handler blocks on both sync and async paths.
    """

    raise_error: bool = True
    run_inline: bool = True

    def __init__(self, propagator: Propagator | str, policy: Policy, *, query_label: Label | Any,
                 enforce: bool = True, audit: AuditLog | None = None) -> None:
        if not isinstance(query_label, Label):
            query_label = policy.lattice.label(query_label, field="query_label")
        self.tracker = FlowTracker(propagator, policy, query_label=query_label, audit=audit)
        self.codec = LabelCodec(policy.lattice)
        self.enforce = enforce
        self._keys: dict[UUID, Hashable] = {}
        self._tools: dict[UUID, tuple[str, str | None]] = {}  # running tool: (name, model's tool-call id)
        self._lock = threading.Lock()

    # -- run bookkeeping -------------------------------------------------------------------
    def _key(self, run_id: UUID, parent_run_id: UUID | None, metadata: dict[str, Any] | None = None) -> Hashable:
        with self._lock:
            key = self._keys.get(run_id)
            if key is None:
                parent = self._keys.get(parent_run_id) if parent_run_id else None
                key = parent if parent is not None else run_key(metadata, run_id)
                self._keys[run_id] = key
            return key

    def key_of(self, run_id: UUID) -> Hashable | None:
        """The state key of a run this handler has seen (for `guard_tool`)."""
        with self._lock:
            return self._keys.get(run_id)

    def tool_call_of(self, run_manager: Any) -> str | None:
        """The model's tool-call id of a running tool (seen in `on_tool_start`)."""
        return self._tools.get(run_manager.run_id, ("", None))[1] if run_manager is not None else None

    def decisions(self, run: Hashable) -> list[Decision]:
        """Decisions of a root run id (or ``("thread", thread_id)``)."""
        st = self.tracker.get(run)
        return list(st.decisions) if st is not None else []

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                       **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id, metadata)
        if parent_run_id is None:  # a new request (in a thread, the latest one counts)
            question = question_of(inputs)
            if question:
                self.tracker.set_query(key, question)

    def _done(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        """A root run ended: forget its run ids; its state stays in the tracker for inspection.

        A conversation thread goes on after a run, so its state is never marked finished (free it
        with ``handler.tracker.end(("thread", thread_id))``).
        """
        if parent_run_id is None:
            with self._lock:
                key = self._keys.get(run_id)
                for rid in [r for r, k in self._keys.items() if k == key]:
                    del self._keys[rid]
            if key is not None and not (isinstance(key, tuple) and key[0] == "thread"):
                self.tracker.finish(key)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._done(run_id, parent_run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                       **kwargs: Any) -> None:
        self._done(run_id, parent_run_id)

    # -- sources ---------------------------------------------------------------------------
    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID,
                           parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                           **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id, metadata)
        if not self.tracker.state(key).query:
            self.tracker.set_query(key, query)

    def on_retriever_end(self, documents: Sequence[Document], *, run_id: UUID,
                         parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id)
        for doc in documents:
            source, missing = document_source(doc, self.codec)
            self.tracker.add_source(key, source, unlabelled=missing)
        self._done(run_id, parent_run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._tools.pop(run_id, None)

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id)
        tool = self._tools.pop(run_id, ("unknown", None))[0]
        artifact = getattr(output, "artifact", None)
        if isinstance(artifact, list) and artifact and all(isinstance(d, Document) for d in artifact):
            for doc in artifact:  # a labelled retriever tool: its documents keep their labels
                source, missing = document_source(doc, self.codec)
                self.tracker.add_source(key, source, unlabelled=missing)
        else:
            content = text_of(output.content) if isinstance(output, ToolMessage) else text_of(output)
            result_id = getattr(output, "tool_call_id", None) or str(run_id)
            self.tracker.add_tool_result(key, tool, content, str(result_id))
        self._done(run_id, parent_run_id)

    # -- outputs ---------------------------------------------------------------------------
    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: list[list[Any]], *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._key(run_id, parent_run_id, metadata)

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                     **kwargs: Any) -> None:
        self._key(run_id, parent_run_id, metadata)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None,
                   **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id)
        if INTERNAL_TAG in (kwargs.get("tags") or []):
            return  # the inner model of an IFCChatModel: its wrapper records the decision
        for generations in response.generations:
            for gen in generations:
                content, calls = gen.text, []
                if isinstance(gen, ChatGeneration):
                    if gen.message.response_metadata.get("ifc_enforced"):
                        continue  # labelled in enforce mode already
                    content = text_of(gen.message.content)
                    calls = list(getattr(gen.message, "tool_calls", []) or [])
                decision = self.tracker.label_output(key, content, calls)
                _emit("ifc.label", decision.to_dict())
        self._done(run_id, parent_run_id)

    # -- enforcement -----------------------------------------------------------------------
    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                      inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id, metadata)
        tool = (serialized or {}).get("name") or kwargs.get("name") or "unknown"
        self._tools[run_id] = (tool, kwargs.get("tool_call_id"))
        check = self.tracker.check_call(key, tool, inputs, kwargs.get("tool_call_id"))
        if not check.allowed:
            _emit("ifc.violation", check.to_dict())
            if self.enforce:
                raise IFCViolation(check, self.tracker.label_of_call(key, kwargs.get("tool_call_id"))[1])


_session_var: ContextVar[IFCCallbackHandler | None] = ContextVar("ifc_session", default=None)
register_configure_hook(_session_var, inheritable=True)


@contextlib.contextmanager
def ifc_session(propagator: Propagator | str, policy: Policy, *, query_label: Label | Any, enforce: bool = True,
                audit: AuditLog | None = None) -> Iterator[IFCCallbackHandler]:
    """Attach an `IFCCallbackHandler` to every run started inside the block, with no config change.

        with ifc_session(prop, policy, query_label="public") as ifc:
            chain.invoke("...")
        ifc.tracker  # decisions and checks per run
    """
    handler = IFCCallbackHandler(propagator, policy, query_label=query_label, enforce=enforce, audit=audit)
    token = _session_var.set(handler)
    try:
        yield handler
    finally:
        _session_var.reset(token)
