"""`IFCMiddleware`: label-checked tool calls for LangChain v1 `create_agent`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from ifc_core import AuditLog, FlowCheck, FlowTracker, IFCViolation, Label, Policy, Propagator, digest

from ._convert import artifact_documents, prompt_messages, text_of

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
        self.tracker = FlowTracker(propagator, policy, query_label=query_label, audit=audit)
        self.on_violation = on_violation
        self._labelling = threading.Lock()

    @staticmethod
    def _key(messages: Sequence[BaseMessage], index: int) -> Any:
        """The run key of the answer at `index`: its id and a digest of it and what came before,
        so that the same message in another history is labelled again, never reused."""
        history = [(m.type, text_of(m.content), getattr(m, "tool_calls", None), getattr(m, "tool_call_id", None))
                   for m in messages[: index + 1]]
        return ("ai", messages[index].id, digest(json.dumps(history, sort_keys=True, default=str))[:24])

    def check(self, messages: Sequence[BaseMessage], tool_call: dict[str, Any]) -> FlowCheck:
        """The verdict on `tool_call` given the conversation `messages` that led to it."""
        at = next((i for i, m in enumerate(messages) if isinstance(m, AIMessage)
                   and any(tc.get("id") == tool_call.get("id") for tc in m.tool_calls)), None)
        if at is None:  # no producing message found: no label is known, so the call is checked as ⊤
            return self.tracker.check_call(None, tool_call["name"], tool_call.get("args"), tool_call.get("id"))
        with self._labelling:  # parallel calls of one message: label it once
            self._label_history(messages[: at + 1])
        return self.tracker.check_call(self._key(messages, at), tool_call["name"], tool_call.get("args"),
                                       tool_call.get("id"))

    def _label_history(self, messages: Sequence[BaseMessage]) -> None:
        """Label every answer in `messages` not labelled yet, oldest first, each from the messages
        before it (the state is the whole record, so a resumed thread decides the same)."""
        for i, ai in enumerate(messages):
            if not isinstance(ai, AIMessage):
                continue
            key = self._key(messages, i)
            st = self.tracker.get(key)
            if st is not None and st.decisions:
                continue
            before = messages[:i]
            self.tracker.begin(key, [text_of(m.content) for m in before if isinstance(m, HumanMessage)])
            for m in before:
                if isinstance(m, ToolMessage):
                    self.tracker.add_tool_result(key, m.name or "unknown", text_of(m.content), m.tool_call_id,
                                                 artifact_documents(m.artifact))
            decision = self.tracker.label_output(key, text_of(ai.content), ai.tool_calls,
                                                 prompt=prompt_messages(before), message_id=ai.id)
            self.tracker.finish(key)
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
            self.tracker.record_approval(None, check, approved, answer)
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
