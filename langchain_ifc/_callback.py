"""`IFCCallbackHandler`: label tracking and tool-call enforcement for existing chains and agents."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.callbacks.manager import dispatch_custom_event
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from ifc_core import (AuditLog, ConfigurationError, Decision, FlowTracker, IFCViolation, Label, Policy, PromptMessage,
                      Propagator)

from ._convert import (REQUEST_KEYS, answer_text, document_view, prompt_messages,
                       prompt_template_literals, request_texts, run_key, text_of, tool_output)
from ._tracked import Tracked

__all__ = ["IFCCallbackHandler", "Tracked", "ifc_session"]


def _emit(name: str, data: dict[str, Any]) -> None:
    """Dispatch a LangChain custom event when inside a run (tracing tools see it)."""
    with contextlib.suppress(Exception):  # outside a run there is no parent to attach it to
        dispatch_custom_event(name, data)


class IFCCallbackHandler(BaseCallbackHandler):
    """Adds labels to a chain or agent you already have: ``config={"callbacks": [handler]}``.

    It collects what each run sees (documents from labelled retrievers, tool results at the
    policy's declared labels, the user's request and the prompt templates it renders), labels
    every LLM output in estimate mode from the prompt that produced it, and checks each tool call
    against the policy with the label of the output that made that very call. With
    ``enforce=True`` (default) a call whose label does not flow to the tool's sink raises
    `IFCViolation` before the tool runs; with ``enforce=False`` violations are only recorded and
    dispatched.

    State is kept per root run, or per ``thread_id`` when the run has one, so concurrent runs
    never mix. Every decision goes to the audit log (if given) and is dispatched as the custom
    event ``ifc.label``; violations as ``ifc.violation``.

    A system message is explained only by the prompt template it was rendered from, or by
    `system_prompts` (the application's own system prompt texts); any other system text is ⊤.
    The user's request is a root run's input: a string, the user turns of a message list, or the
    values of an input dict under `request_keys` (``input``, ``question``, ``query``,
    ``messages``, ``prompt``, ``user_input``, ``request`` by default). Any other input key (a
    ``context`` the application formatted itself, a document's ``text``) is not the user's.

    This is a synchronous handler on purpose: an async handler cannot stop a synchronous tool
    (LangChain swallows its exceptions), while a sync handler blocks on both sync and async paths.
    """

    raise_error: bool = True
    run_inline: bool = True

    def __init__(self, propagator: Propagator | str, policy: Policy, *, query_label: Label | Any,
                 enforce: bool = True, audit: AuditLog | None = None, system_prompts: Sequence[str] = (),
                 request_keys: Sequence[str] = REQUEST_KEYS) -> None:
        self.tracker = FlowTracker(propagator, policy, query_label=query_label, audit=audit,
                                   system_prompts=system_prompts)
        if isinstance(request_keys, str) or not all(isinstance(k, str) and k for k in request_keys):
            raise ConfigurationError("request_keys: give a list of the input keys that hold the user's request, "
                                     "e.g. ['question']")
        if not isinstance(enforce, bool):
            raise ConfigurationError("enforce: give True (raise before a refused tool runs) or False (record only)")
        self.request_keys = tuple(request_keys)
        self.enforce = enforce
        self._keys: dict[UUID, Hashable] = {}
        self._tools: dict[UUID, tuple[str, str | None]] = {}  # running tool: (name, model's tool-call id)
        self._prompts: dict[UUID, list[PromptMessage]] = {}  # running model: the prompt it was given
        self._model_run: ContextVar[UUID | None] = ContextVar(f"ifc_model_run_{id(self)}", default=None)
        self._guarded: OrderedDict[UUID, None] = OrderedDict()  # tool runs a guard_tool checks itself
        self._tracking: ContextVar[Tracked | None] = ContextVar(f"ifc_tracking_{id(self)}", default=None)
        self._lock = threading.Lock()

    # -- run bookkeeping -------------------------------------------------------------------
    def _key(self, run_id: UUID, parent_run_id: UUID | None, metadata: dict[str, Any] | None = None) -> Hashable:
        with self._lock:
            key = self._keys.get(run_id)
            if key is None:
                parent = self._keys.get(parent_run_id) if parent_run_id else None
                key = parent if parent is not None else run_key(metadata, run_id)
                self._keys[run_id] = key
                tracked = self._tracking.get()
                if parent_run_id is None and tracked is not None and key not in tracked.keys:
                    tracked.keys.append(key)
            return key

    def key_of(self, run_id: UUID) -> Hashable | None:
        """The state key of a run this handler has seen (for `guard_tool` and `IFCChatModel`)."""
        with self._lock:
            return self._keys.get(run_id)

    def guard_run(self, run_id: UUID) -> None:
        """A `guard_tool` run: the guard checks the call itself (only the guard calls this, with
        a run id it made)."""
        with self._lock:
            self._guarded[run_id] = None
            while len(self._guarded) > 4096:
                self._guarded.popitem(last=False)

    @contextlib.contextmanager
    def track(self) -> Iterator[Tracked]:
        """The decisions of the runs started inside the block, with no run ids to pass:

            with ifc.track() as t:
                answer = chain.invoke("When is the office open?", config={"callbacks": [ifc]})
            t.label, t.decision, t.decisions   # the answer's label, its record, every decision
        """
        tracked = Tracked(self)
        token = self._tracking.set(tracked)
        try:
            yield tracked
        finally:
            self._tracking.reset(token)

    def current_model_run(self) -> UUID | None:
        """The chat-model run that started last in the calling context (streaming gives the model
        no run manager, so `IFCChatModel` finds its run here)."""
        return self._model_run.get()

    def tool_call_of(self, run_manager: Any) -> str | None:
        """The model's tool-call id of a running tool (seen in `on_tool_start`)."""
        with self._lock:
            return self._tools.get(run_manager.run_id, ("", None))[1] if run_manager is not None else None

    def decisions(self, run: Hashable) -> list[Decision]:
        """Decisions of a root run id (or ``("thread", thread_id)``)."""
        st = self.tracker.get(run)
        return list(st.decisions) if st is not None else []

    def held(self) -> dict[str, int]:
        """How much state is held (runs being tracked, running tools and models): for leak checks."""
        with self._lock:
            mine = {"run_ids": len(self._keys), "tools": len(self._tools), "prompts": len(self._prompts)}
        return {**self.tracker.held(), **mine}

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                       **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id, metadata)
        if parent_run_id is None:  # a new request (in a thread, it joins the earlier ones)
            self.tracker.begin(key, request_texts(inputs, self.request_keys))
        literals = prompt_template_literals(serialized, kwargs.get("name"))
        if literals is not None:
            self.tracker.add_template(key, literals)

    def _done(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        """A run ended: a root run forgets its run ids and is marked finished (a thread too: it is
        live again when its next request begins; its state stays until newer runs push it out)."""
        with self._lock:
            self._prompts.pop(run_id, None)
            self._tools.pop(run_id, None)
            if parent_run_id is not None:
                return
            key = self._keys.get(run_id)
            for rid in [r for r, k in self._keys.items() if k == key]:
                del self._keys[rid]
        if key is not None:
            self.tracker.finish(key)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        tracked = self._tracking.get()
        if parent_run_id is None and tracked is not None:
            key = self.key_of(run_id)
            if key is not None:
                tracked.answers[key] = answer_text(outputs)
        self._done(run_id, parent_run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                       **kwargs: Any) -> None:
        self._done(run_id, parent_run_id)

    # -- sources ---------------------------------------------------------------------------
    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *, run_id: UUID,
                           parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                           **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id, metadata)
        if parent_run_id is None:
            self.tracker.begin(key, [query])

    def on_retriever_end(self, documents: Sequence[Document], *, run_id: UUID,
                         parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id)
        for doc in documents:
            self.tracker.add_document(key, document_view(doc))
        self._done(run_id, parent_run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                           **kwargs: Any) -> None:
        self._done(run_id, parent_run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                      **kwargs: Any) -> None:
        self._done(run_id, parent_run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id)
        with self._lock:
            tool, call_id = self._tools.get(run_id, (kwargs.get("name") or "unknown", None))
        content, result, docs = tool_output(output)
        if isinstance(output, ToolMessage):
            call_id = output.tool_call_id or call_id
        self.tracker.add_tool_result(key, tool, content, str(call_id or run_id), docs, result)
        self._done(run_id, parent_run_id)

    # -- outputs ---------------------------------------------------------------------------
    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: list[list[BaseMessage]], *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id, metadata)
        self._model_run.set(run_id)  # for IFCChatModel's streaming path, which gets no run manager
        prompt = prompt_messages(messages[0] if messages else [])
        if parent_run_id is None:  # the model is the run: the user's turns are the request
            self.tracker.begin(key, [m.text for m in prompt if m.role == "user"])
        with self._lock:
            self._prompts[run_id] = prompt

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                     **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id, metadata)
        if parent_run_id is None:  # the model is the run: its prompt is the request
            self.tracker.begin(key, prompts[:1])
        with self._lock:
            self._prompts[run_id] = [PromptMessage("user", p) for p in prompts[:1]]

    def on_llm_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        self._done(run_id, parent_run_id)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None,
                   **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id)
        with self._lock:
            prompt = self._prompts.pop(run_id, None)
        if not self.tracker.is_enforced(run_id):  # an enforce wrapper records its own decision
            for generations in response.generations:
                for gen in generations:
                    content, calls, message_id = gen.text, [], None
                    if isinstance(gen, ChatGeneration):
                        content = text_of(gen.message.content)
                        calls = list(getattr(gen.message, "tool_calls", []) or [])
                        message_id = gen.message.id
                    decision = self.tracker.label_output(key, content, calls, prompt=prompt, message_id=message_id)
                    _emit("ifc.label", decision.to_dict())
        self._done(run_id, parent_run_id)

    # -- enforcement -----------------------------------------------------------------------
    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, metadata: dict[str, Any] | None = None,
                      inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        key = self._key(run_id, parent_run_id, metadata)
        tool = (serialized or {}).get("name") or kwargs.get("name") or "unknown"
        call_id = kwargs.get("tool_call_id")
        with self._lock:
            self._tools[run_id] = (tool, call_id)
            guarded = self._guarded.pop(run_id, False) is None
        if guarded:  # the guard_tool checks this call with the same tracker, and answers for it
            return
        try:
            check = self.tracker.check_call(key, tool, inputs, call_id, raise_on_violation=self.enforce)
        except IFCViolation as violation:
            with self._lock:  # the tool will not run: no on_tool_end or on_tool_error follows
                self._tools.pop(run_id, None)
                self._keys.pop(run_id, None)
            _emit("ifc.violation", violation.check.to_dict())
            raise
        if not check.allowed:
            _emit("ifc.violation", check.to_dict())


_session_var: ContextVar[IFCCallbackHandler | None] = ContextVar("ifc_session", default=None)
register_configure_hook(_session_var, inheritable=True)


@contextlib.contextmanager
def ifc_session(propagator: Propagator | str, policy: Policy, *, query_label: Label | Any, enforce: bool = True,
                audit: AuditLog | None = None, system_prompts: Sequence[str] = (),
                request_keys: Sequence[str] = REQUEST_KEYS) -> Iterator[IFCCallbackHandler]:
    """Attach an `IFCCallbackHandler` to every run started inside the block, with no config change.

        with ifc_session(prop, policy, query_label="public") as ifc:
            chain.invoke("...")
        ifc.tracker  # decisions and checks per run
    """
    handler = IFCCallbackHandler(propagator, policy, query_label=query_label, enforce=enforce, audit=audit,
                                 system_prompts=system_prompts, request_keys=request_keys)
    token = _session_var.set(handler)
    try:
        yield handler
    finally:
        _session_var.reset(token)
