"""Which user messages are the user's. `IFCMiddleware` seals the user turns each invocation
brings as requests and marks every other user message as not one (`RequestTurns`, mixed into
it): a summary, an injected message or one a tool returns never carries the query label. The
mark lives in the message (``additional_kwargs["ifc"]["request"]``), so it survives checkpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from ifc_core import IFC_META_KEY, FlowTracker

from ._convert import text_of

__all__ = ["RequestTurns"]


def _mark(message: HumanMessage) -> Any:
    """A user message's request mark: its seal, False (not a request), or None (not yet seen)."""
    meta = message.additional_kwargs.get(IFC_META_KEY)
    return meta.get("request") if isinstance(meta, dict) else None


def _marked(message: HumanMessage, mark: Any) -> HumanMessage:
    old = message.additional_kwargs.get(IFC_META_KEY)
    meta = {**(old if isinstance(old, dict) else {}), "request": mark}
    return message.model_copy(update={"additional_kwargs": {**message.additional_kwargs, IFC_META_KEY: meta}})


class RequestTurns:
    """The request marks of user messages: the hooks that put them, and the check that reads them."""

    tracker: FlowTracker

    def _is_request(self, message: Any) -> bool:
        """A user turn that arrived as the agent's input (sealed by `before_agent`); a user message
        that a tool, a middleware (a summary) or a state update put into the conversation is not."""
        return isinstance(message, HumanMessage) and self.tracker.is_request(text_of(message.content), _mark(message))

    def _seal_requests(self, messages: Sequence[Any]) -> list[Any]:
        """The user turns that arrived as this invocation's input (those after the last model or
        tool message), sealed as requests; turns already sealed are left as they are."""
        last = max((i for i, m in enumerate(messages) if isinstance(m, (AIMessage, ToolMessage))), default=-1)
        return [_marked(m, self.tracker.seal_request(text_of(m.content))) for m in messages[last + 1:]
                if isinstance(m, HumanMessage) and _mark(m) is None]

    def after_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Marks every user message the invocation leaves unsealed (one a tool or a middleware put
        there) as not a request, so that a later invocation never seals it as its own input; so do
        `before_model`, `after_model` and every tool's `Command` (a run that stops on an error
        never reaches this hook)."""
        marked = [_marked(m, False) for m in state.get("messages") or []
                  if isinstance(m, HumanMessage) and _mark(m) is None]
        return {"messages": marked} if marked else None

    async def aafter_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return self.after_agent(state, runtime)

    before_model = after_model = after_agent
    abefore_model = aafter_model = aafter_agent

    @staticmethod
    def _mark_command(result: Any) -> Any:
        """A tool's `Command` with the user messages it adds marked as not requests."""
        from langgraph.types import Command

        update = getattr(result, "update", None) if isinstance(result, Command) else None
        if not isinstance(update, dict) or not isinstance(update.get("messages"), list):
            return result
        messages = [_marked(m, False) if isinstance(m, HumanMessage) and _mark(m) is None else m
                    for m in update["messages"]]
        return dataclasses.replace(result, update={**update, "messages": messages})
