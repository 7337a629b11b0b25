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
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from ifc_core import (IFC_META_KEY, AuditLog, ConfigurationError, FlowCheck, FlowTracker, IFCViolation, Label, Policy,
                      Propagator, approval_request, digest, read_review, render_tool_calls)

from ._boundary import ModelCalls, recording, shown_as
from ._convert import artifact_documents, prompt_message, prompt_messages, text_of, with_text
from ._turns import RequestTurns

__all__ = ["IFCMiddleware"]


_UNSEEN = ("no model call that gave this answer was seen (a middleware inside IFCMiddleware answered "
           "without the model, or called it outside the run): its input is unknown, so it is ⊤")
_CHANGED = ("a middleware inside IFCMiddleware changed the messages the model received: what enforce mode "
            "withheld may have been put back, so the answer is ⊤ (list IFCMiddleware last in middleware=[...])")


def _answer(response: Any) -> AIMessage | None:
    return next((m for m in response.result if isinstance(m, AIMessage)), None)


OnViolation = Literal["block", "raise", "interrupt"]


class IFCMiddleware(RequestTurns, AgentMiddleware):
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
    - ``"interrupt"``: a LangGraph interrupt in the format of LangChain's
      `HumanInTheLoopMiddleware` (``action_requests``, ``review_configs``) plus the IFC fields:
      ``{"type": "ifc_approval", tool, args, tool_call_id, label, sink, reason, digest, ...}``.
      Resume with ``Command(resume={"decisions": [{"type": "approve" | "edit" | "reject" |
      "respond", ...}], "ifc_digest": <digest>})``: the answer must echo the digest, so an answer
      to a call that changed since is not taken (the reviewer is asked again); an edited call is
      checked again before it runs. Needs a checkpointer and a ``thread_id`` (checked when the
      agent starts).

    The policy must fit the agent's tools: a tool the policy names that the agent lacks, or a
    tool without a sink (unless `default_sink` is set), is an error at the first model call.

    `system_prompts`: the application's own system prompt texts (give the ``system_prompt`` you
    gave ``create_agent``). Only those, the user's sealed turns, sealed documents, tool results and
    recorded answers are explained; any other system text (what a middleware wrote there: a fetched
    page, retrieved documents, a user profile) is ⊤, as in the callback handler and LlamaIndex.
    """

    def __init__(self, propagator: Propagator | str, policy: Policy, *, query_label: Label | Any,
                 on_violation: OnViolation = "block", audit: AuditLog | None = None,
                 mode: Literal["estimate", "enforce"] = "estimate", sink_retry: bool = True,
                 system_prompts: Sequence[str] = ()) -> None:
        super().__init__()
        if on_violation not in ("block", "raise", "interrupt"):
            raise ConfigurationError("IFCMiddleware.on_violation: use 'block', 'raise' or 'interrupt'")
        if mode not in ("estimate", "enforce"):
            raise ConfigurationError("IFCMiddleware.mode: use 'estimate' (label what the model said) or "
                                     "'enforce' (guard it)")
        if not isinstance(sink_retry, bool):
            raise ConfigurationError("IFCMiddleware.sink_retry: give True (one more regeneration without the parts "
                                     "above a call's sink) or False")
        self.tracker = FlowTracker(propagator, policy, query_label=query_label, audit=audit,
                                   system_prompts=system_prompts)
        self.on_violation = on_violation
        self.mode = mode
        self.sink_retry = sink_retry
        self._fitted: set[frozenset[str]] = set()

    @staticmethod
    def _key(ai: AIMessage) -> Any:
        """The run key of one answer: a digest of what it says and the calls it makes (with ids)."""
        return ("answer", digest(json.dumps([text_of(ai.content), ai.tool_calls], sort_keys=True, default=str))[:32])

    # -- labelling at production -----------------------------------------------------------
    def _known(self, key: Any, request: Any) -> None:
        """What the request shows, for the account: the user's sealed turns and the tool results
        (the system prompts are the tracker's, declared)."""
        messages = list(request.messages)
        self.tracker.begin(key, [text_of(h.content) for h in messages if self._is_request(h)])
        for t in messages:
            if isinstance(t, ToolMessage):
                self.tracker.add_tool_result(key, t.name or "unknown", text_of(t.content), t.tool_call_id,
                                             artifact_documents(t.artifact), t.artifact)

    def _sealed(self, response: Any, content: str, calls: Any, decision: Any) -> Any:
        """`response` with its answer carrying the sealed label (``response_metadata["ifc"]``)."""
        with contextlib.suppress(Exception):
            dispatch_custom_event("ifc.label", decision.to_dict())
        seal = self.tracker.seal_output(content, calls, decision.label)
        result = [m.model_copy(update={"response_metadata": {**(m.response_metadata or {}), IFC_META_KEY: seal}})
                  if isinstance(m, AIMessage) else m for m in response.result]
        return dataclasses.replace(response, result=result)

    def _label(self, request: Any, response: Any, seen: ModelCalls) -> Any:
        """Estimate mode: label the answer the model gave, from the messages it was really given
        (a middleware inside this one may have changed the request: what it added is ⊤ unless
        sealed); an answer no recorded model call gave is ⊤."""
        ai = _answer(response)
        if ai is None:
            return response
        key = self._key(ai)
        self._known(key, request)
        received = seen.received(ai)
        content = text_of(ai.content)
        if received is None:
            decision = self.tracker.record(key, self.tracker.top_decision(
                render_tool_calls(content, ai.tool_calls), _UNSEEN, "estimate"), ai.tool_calls,
                content=content, message_id=ai.id)
        else:
            decision = self.tracker.label_output(key, content, ai.tool_calls, prompt=prompt_messages(received),
                                                 message_id=ai.id)
        self.tracker.finish(key)
        return self._sealed(response, content, ai.tool_calls, decision)

    def _enforce(self, request: Any, call: Callable[[Any], Any]) -> Any:
        """Enforce mode: release an answer generated only from the parts its label admits. If the
        model did not receive exactly the messages this middleware gave (a middleware inside it
        changed them), the answer is ⊤: what was withheld may have been put back."""
        system, messages = request.system_message, list(request.messages)
        shown = ([system] if system else []) + messages
        key = ("request", digest(json.dumps([(m.type, text_of(m.content)) for m in shown], default=str))[:32])
        self._known(key, request)
        responses: list[Any] = []
        changed: list[bool] = []

        def generate(texts: list[str] | None) -> tuple[str, list[Any]]:
            given = shown if texts is None else [with_text(m, t) for m, t in zip(shown, texts)]
            with recording() as seen:
                if texts is None:
                    responses.append(call(request))
                else:
                    responses.append(call(request.override(system_message=given[0] if system else None,
                                                           messages=given[1:] if system else given)))
            ai = _answer(responses[-1])
            received = seen.received(ai)
            changed.append(received is None or shown_as(received) != shown_as(given))
            return (text_of(ai.content), list(ai.tool_calls)) if ai is not None else ("", [])

        answer_key = lambda content, calls: self._key(AIMessage(content, tool_calls=calls))  # noqa: E731
        decision, content, calls = self.tracker.enforce(key, prompt_messages(shown), generate,
                                                        sink_retry=self.sink_retry, record_as=answer_key)
        if any(changed):
            decision = self.tracker.record(answer_key(content, calls), self.tracker.top_decision(
                render_tool_calls(content, calls), _CHANGED), calls, content=content)
        self.tracker.finish(key)
        return self._sealed(responses[-1], content, calls, decision)

    def _fit(self, request: Any) -> None:
        """The policy must fit the agent's tools (checked once per set of tools)."""
        names = frozenset(t.name if hasattr(t, "name") else str(t.get("name")) for t in (request.tools or []))
        if names and names not in self._fitted:
            self.tracker.policy.check_tools(names)
            self._fitted.add(names)

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        self._fit(request)
        if self.mode == "enforce":
            return self._enforce(request, handler)
        with recording() as seen:
            response = handler(request)
        return self._label(request, response, seen)

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        self._fit(request)
        if self.mode == "enforce":
            loop = asyncio.get_running_loop()
            return await asyncio.to_thread(
                self._enforce, request, lambda r: asyncio.run_coroutine_threadsafe(handler(r), loop).result())
        with recording() as seen:
            response = await handler(request)
        return await asyncio.to_thread(self._label, request, response, seen)

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

    def _decide(self, request: Any, check: FlowCheck) -> tuple[Any, ToolMessage | None]:
        """(the request to run, None), or (None, the reply instead); raises in ``"raise"`` mode."""
        if check.allowed:
            return request, None
        if self.on_violation == "raise":
            raise IFCViolation(check)
        if self.on_violation == "interrupt":
            return self._review(request, check)
        return None, self._refusal(check, f"this call was blocked: {check.reason}")

    def _review(self, request: Any, check: FlowCheck) -> tuple[Any, ToolMessage | None]:
        """Put the refused call to a reviewer (a LangGraph interrupt in the HITL format) until an
        answer echoes this very call's digest; an edited call is checked again before it runs."""
        from langgraph.config import get_config
        from langgraph.types import interrupt

        thread = (get_config().get("configurable") or {}).get("thread_id")
        args = request.tool_call.get("args")
        payload = approval_request(check, args, run=thread)
        while True:  # on resume the node runs again: each pass replays the answers given so far
            answer = interrupt(payload)
            review, problem = read_review(answer, payload["digest"])
            if review is not None:
                break
            payload = {**payload, "problem": problem}
        self.tracker.record_approval(thread, check, review, args, answer)
        if review.kind == "approve":
            return request, None
        if review.kind == "respond":
            return None, ToolMessage(content=review.message or "", tool_call_id=check.tool_call_id or "",
                                     name=check.tool)
        if review.kind == "reject":
            return None, self._refusal(check, "a reviewer rejected this call" + (f": {review.message}"
                                                                                  if review.message else ""))
        edited = self.tracker.check_edit(self._key_of_call(request), check, args, review.args or {})
        if not edited.allowed:
            return None, self._refusal(edited, f"the edited call was refused: {edited.reason}")
        return request.override(tool_call={**request.tool_call, "args": review.args}), None

    def _key_of_call(self, request: Any) -> Any:
        ai = next((m for m in request.state["messages"] if isinstance(m, AIMessage)
                   and any(tc.get("id") == request.tool_call.get("id") for tc in m.tool_calls)), None)
        return self._key(ai) if ai is not None else None

    def before_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Seals the user turns this invocation brings (the only text, besides the application's
        own, that carries the query label); checks that interrupts can pause."""
        if self.on_violation == "interrupt":
            from langgraph.config import get_config

            configurable = get_config().get("configurable") or {}
            if configurable.get("__pregel_checkpointer") is None or configurable.get("thread_id") is None:
                raise ConfigurationError(
                    "IFCMiddleware(on_violation='interrupt') needs a checkpointer and a thread id to pause for "
                    "a reviewer: create_agent(..., checkpointer=InMemorySaver()) and "
                    "config={'configurable': {'thread_id': ...}}; or use on_violation='block' or 'raise'")
        sealed = self._seal_requests(list(state.get("messages") or []))
        return {"messages": sealed} if sealed else None

    async def abefore_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.before_agent(state, runtime)

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        check = self.check(request.state["messages"], request.tool_call)
        if not check.allowed:
            with contextlib.suppress(Exception):
                dispatch_custom_event("ifc.violation", check.to_dict())
        run, reply = self._decide(request, check)
        return reply if reply is not None else self._mark_command(handler(run))

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        check = await asyncio.to_thread(self.check, request.state["messages"], request.tool_call)
        if not check.allowed:
            with contextlib.suppress(Exception):
                await adispatch_custom_event("ifc.violation", check.to_dict())
        run, reply = self._decide(request, check)
        return reply if reply is not None else self._mark_command(await handler(run))
