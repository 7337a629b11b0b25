"""`IFCMiddleware`: label-checked tool calls for LangChain v1 `create_agent`."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from ifc_core import AuditLog, FlowCheck, FlowTracker, IFCViolation, Label, LabelCodec, Policy, Propagator

from ._convert import document_source, text_of

__all__ = ["IFCMiddleware"]

OnViolation = Literal["block", "raise", "interrupt"]


class IFCMiddleware(AgentMiddleware):
    """Checks every tool call of an agent against a `Policy`, with the label of the model output
    that produced that call (per call, not one label for the whole conversation).

    The label is computed from the agent state: the user's messages, the documents that labelled
    retriever tools returned before the call (kept in `ToolMessage.artifact`), and other tool
    results, labelled by the policy's declaration for their tool. So a resumed or forked thread
    is still labelled correctly.

    `on_violation`:
    - ``"block"``: the model gets an error `ToolMessage` saying why, and the agent goes on;
    - ``"raise"``: `IFCViolation` propagates out of ``agent.invoke``;
    - ``"interrupt"``: a LangGraph interrupt carrying ``{"type": "ifc_approval", tool, label, sink,
      reason, ...}``; resume with ``Command(resume={"approve": True})`` (or False). Needs a
      checkpointer and a ``thread_id``.
    """

    def __init__(self, propagator: Propagator | str, policy: Policy, *, query_label: Label | Any,
                 on_violation: OnViolation = "block", audit: AuditLog | None = None) -> None:
        super().__init__()
        if on_violation not in ("block", "raise", "interrupt"):
            raise ValueError("on_violation: use 'block', 'raise' or 'interrupt'")
        if not isinstance(query_label, Label):
            query_label = policy.lattice.label(query_label, field="query_label")
        self.tracker = FlowTracker(propagator, policy, query_label=query_label, audit=audit)
        self.codec = LabelCodec(policy.lattice)
        self.on_violation = on_violation
        self._labelling = threading.Lock()

    def check(self, messages: Sequence[BaseMessage], tool_call: dict[str, Any]) -> FlowCheck:
        """The verdict on `tool_call` given the conversation `messages` that led to it."""
        at = next((i for i, m in enumerate(messages) if isinstance(m, AIMessage)
                   and any(tc.get("id") == tool_call.get("id") for tc in m.tool_calls)), None)
        key: Any = ("call", tool_call.get("id"))
        if at is not None:
            ai = messages[at]
            key = ("ai", ai.id or tool_call.get("id"))
            with self._labelling:  # parallel calls of one message: label it once
                if self.tracker.state(key).last is None:
                    self._label(key, messages[:at], ai)
        # no producing message found: no label is known, so the call is checked as ⊤
        return self.tracker.check_call(key, tool_call["name"], tool_call.get("args"), tool_call.get("id"))

    def _label(self, key: Any, before: Sequence[BaseMessage], ai: AIMessage) -> None:
        self.tracker.set_query(key, "\n".join(text_of(m.content) for m in before if isinstance(m, HumanMessage)))
        for m in before:
            if not isinstance(m, ToolMessage):
                continue
            docs = m.artifact if isinstance(m.artifact, list) else []
            if docs and all(isinstance(d, Document) for d in docs):
                for doc in docs:
                    source, missing = document_source(doc, self.codec)
                    self.tracker.add_source(key, source, unlabelled=missing)
            else:
                self.tracker.add_tool_result(key, m.name or "unknown", text_of(m.content), m.tool_call_id)
        decision = self.tracker.label_output(key, text_of(ai.content), ai.tool_calls)
        with contextlib.suppress(Exception):
            dispatch_custom_event("ifc.label", decision.to_dict())

    def _refusal(self, check: FlowCheck, why: str) -> ToolMessage:
        return ToolMessage(content=f"IFC: {why}", tool_call_id=check.tool_call_id or "",
                           name=check.tool, status="error")

    def _decide(self, check: FlowCheck, *, emit: bool = True) -> ToolMessage | None:
        """None when the call may proceed; else the refusal (or raise / interrupt)."""
        if check.allowed:
            return None
        if emit:
            with contextlib.suppress(Exception):
                dispatch_custom_event("ifc.violation", check.to_dict())
        if self.on_violation == "raise":
            raise IFCViolation(check)
        if self.on_violation == "interrupt":
            from langgraph.types import interrupt

            answer = interrupt({"type": "ifc_approval", **check.to_dict()})
            approved = answer is True or answer == "approve" or (
                isinstance(answer, dict) and answer.get("approve") is True)
            if self.tracker.audit:
                self.tracker.audit.write({"event": "ifc.approval", "approved": approved, **check.to_dict()})
            return None if approved else self._refusal(check, f"a reviewer rejected this call: {check.reason}")
        return self._refusal(check, f"this call was blocked: {check.reason}")

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        check = self.check(request.state["messages"], request.tool_call)
        refusal = self._decide(check)
        return refusal if refusal is not None else handler(request)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        check = await asyncio.to_thread(self.check, request.state["messages"], request.tool_call)
        if not check.allowed:
            with contextlib.suppress(Exception):
                await adispatch_custom_event("ifc.violation", check.to_dict())
        refusal = self._decide(check, emit=False)
        return refusal if refusal is not None else await handler(request)
