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

from ._convert import artifact_documents, prompt_message, prompt_messages, text_of, with_text

__all__ = ["IFCMiddleware"]


def _answer(response: Any) -> AIMessage | None:
    return next((m for m in response.result if isinstance(m, AIMessage)), None)

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
                 on_violation: OnViolation = "block", audit: AuditLog | None = None,
                 mode: Literal["estimate", "enforce"] = "estimate", sink_retry: bool = True) -> None:
        super().__init__()
        if on_violation not in ("block", "raise", "interrupt"):
            raise ValueError("on_violation: use 'block', 'raise' or 'interrupt'")
        if mode not in ("estimate", "enforce"):
            raise ValueError("mode: use 'estimate' (label what the model said) or 'enforce' (guard it)")
        self.tracker = FlowTracker(propagator, policy, query_label=query_label, audit=audit)
        self.on_violation = on_violation
        self.mode = mode
        self.sink_retry = sink_retry

    @staticmethod
    def _key(ai: AIMessage) -> Any:
        """The run key of one answer: a digest of what it says and the calls it makes (with ids)."""
        return ("answer", digest(json.dumps([text_of(ai.content), ai.tool_calls], sort_keys=True, default=str))[:32])

    # -- labelling at production -----------------------------------------------------------
    def _known(self, key: Any, messages: Sequence[BaseMessage]) -> None:
        """What the request shows, for the account: the user's turns and the tool results."""
        self.tracker.begin(key, [text_of(h.content) for h in messages if isinstance(h, HumanMessage)])
        for t in messages:
            if isinstance(t, ToolMessage):
                self.tracker.add_tool_result(key, t.name or "unknown", text_of(t.content), t.tool_call_id,
                                             artifact_documents(t.artifact))

    def _sealed(self, response: Any, content: str, calls: Any, decision: Any) -> Any:
        """`response` with its answer carrying the sealed label (``response_metadata["ifc"]``)."""
        with contextlib.suppress(Exception):
            dispatch_custom_event("ifc.label", decision.to_dict())
        seal = self.tracker.seal_output(content, calls, decision.label)
        result = [m.model_copy(update={"response_metadata": {**(m.response_metadata or {}), IFC_META_KEY: seal}})
                  if isinstance(m, AIMessage) else m for m in response.result]
        return dataclasses.replace(response, result=result)

    def _label(self, request: Any, response: Any) -> Any:
        """Estimate mode: label the answer the model gave."""
        messages = list(request.messages)
        prompt = prompt_messages(([request.system_message] if request.system_message else []) + messages)
        ai = _answer(response)
        if ai is None:
            return response
        key = self._key(ai)
        self._known(key, messages)
        decision = self.tracker.label_output(key, text_of(ai.content), ai.tool_calls, prompt=prompt, message_id=ai.id)
        self.tracker.finish(key)
        return self._sealed(response, text_of(ai.content), ai.tool_calls, decision)

    def _enforce(self, request: Any, call: Callable[[Any], Any]) -> Any:
        """Enforce mode: release an answer generated only from the parts its label admits."""
        system, messages = request.system_message, list(request.messages)
        shown = ([system] if system else []) + messages
        key = ("request", digest(json.dumps([(m.type, text_of(m.content)) for m in shown], default=str))[:32])
        self._known(key, messages)
        responses: list[Any] = []

        def generate(texts: list[str] | None) -> tuple[str, list[Any]]:
            if texts is None:
                responses.append(call(request))
            else:
                rebuilt = [with_text(m, t) for m, t in zip(shown, texts)]
                responses.append(call(request.override(system_message=rebuilt[0] if system else None,
                                                       messages=rebuilt[1:] if system else rebuilt)))
            ai = _answer(responses[-1])
            return (text_of(ai.content), list(ai.tool_calls)) if ai is not None else ("", [])

        decision, content, calls = self.tracker.enforce(
            key, prompt_messages(shown), generate, sink_retry=self.sink_retry,
            record_as=lambda content, calls: self._key(AIMessage(content, tool_calls=calls)))
        self.tracker.finish(key)
        return self._sealed(responses[-1], content, calls, decision)

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        if self.mode == "enforce":
            return self._enforce(request, handler)
        return self._label(request, handler(request))

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        if self.mode == "enforce":
            loop = asyncio.get_running_loop()
            return await asyncio.to_thread(
                self._enforce, request, lambda r: asyncio.run_coroutine_threadsafe(handler(r), loop).result())
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
