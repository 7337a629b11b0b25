"""`IFCMiddleware`: label-checked tool calls for LangChain v1 `create_agent`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from langchain.agents.middleware import AgentMiddleware
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from ifc_core import IFC_META_KEY, AuditLog, FlowCheck, FlowTracker, IFCViolation, Label, Policy, Propagator, digest

from ._convert import artifact_documents, prompt_message, prompt_messages, text_of

__all__ = ["IFCMiddleware"]

OnViolation = Literal["block", "raise", "interrupt"]


class IFCMiddleware(AgentMiddleware):
    """Labels every model output of a `create_agent` agent and checks every tool call against a
    `Policy` with the label of the output that produced that very call.

    Each output is labelled when it is produced (`wrap_model_call`), from the request's messages
    by origin: the user's messages at the query label, tool results at their declared labels (or
    the sealed documents of a labelled retriever tool), earlier answers at the labels recorded
    when they were produced, anything else at ⊤. The label is sealed into the answer's
    ``response_metadata["ifc"]``, so a checkpointed, resumed or forked thread is checked exactly
    as it would have been uninterrupted (in another process too, when ``$LLM_IFC_KEY`` is set). A
    call whose producing answer has no recorded or sealed label, or was changed since, is checked
    as ⊤.

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

    @staticmethod
    def _key(ai: AIMessage) -> Any:
        """The run key of one answer: a digest of what it says and the calls it makes (with ids)."""
        calls = [(c.get("id"), c.get("name"), c.get("args")) for c in ai.tool_calls]
        return ("answer", digest(json.dumps([text_of(ai.content), calls], sort_keys=True, default=str))[:32])

    # -- labelling at production -----------------------------------------------------------
    def _label(self, request: Any, response: Any) -> Any:
        messages = list(request.messages)
        prompt = prompt_messages(([request.system_message] if request.system_message else []) + messages)
        result = []
        for m in response.result:
            if isinstance(m, AIMessage):
                key = self._key(m)
                self.tracker.begin(key, [text_of(h.content) for h in messages if isinstance(h, HumanMessage)])
                for t in messages:  # known texts, for a tool result the user pastes into a message
                    if isinstance(t, ToolMessage):
                        self.tracker.add_tool_result(key, t.name or "unknown", text_of(t.content), t.tool_call_id,
                                                     artifact_documents(t.artifact))
                decision = self.tracker.label_output(key, text_of(m.content), m.tool_calls, prompt=prompt,
                                                     message_id=m.id)
                self.tracker.finish(key)
                with contextlib.suppress(Exception):
                    dispatch_custom_event("ifc.label", decision.to_dict())
                seal = self.tracker.seal_output(text_of(m.content), m.tool_calls, decision.label)
                m = m.model_copy(update={"response_metadata": {**(m.response_metadata or {}), IFC_META_KEY: seal}})
            result.append(m)
        return dataclasses.replace(response, result=result)

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        return self._label(request, handler(request))

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        response = await handler(request)
        return await asyncio.to_thread(self._label, request, response)

    # -- checks ----------------------------------------------------------------------------
    def check(self, messages: Sequence[BaseMessage], tool_call: dict[str, Any]) -> FlowCheck:
        """The verdict on `tool_call` given the conversation `messages` that led to it."""
        ai = next((m for m in messages if isinstance(m, AIMessage)
                   and any(tc.get("id") == tool_call.get("id") for tc in m.tool_calls)), None)
        key = self._key(ai) if ai is not None else None
        if ai is not None and not self.tracker.decisions_of(key):
            # produced elsewhere (another process, a restored checkpoint): only a valid seal counts
            self.tracker.adopt_sealed(key, prompt_message(ai))
        return self.tracker.check_call(key, tool_call["name"], tool_call.get("args"), tool_call.get("id"))

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
