"""What the model really received: a recorder of the chat-model calls made inside a block.

`IFCMiddleware` labels an answer from the request it is given, but a middleware listed after it
(inside it) can change the request before the model sees it (a dynamic system prompt with
retrieved text, a trimmed history). The recorder sees every chat-model call started inside
``with recording() as seen:`` (a LangChain configure hook, as `ifc_session` uses), with the
messages the model was called with and the message it answered, so the middleware can check
that the model saw exactly what was labelled.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tracers.context import register_configure_hook

__all__ = ["ModelCalls", "recording"]


class ModelCalls(BaseCallbackHandler):
    """The chat-model calls of one block: (messages in, message out) in the order they ended."""

    run_inline: bool = True

    def __init__(self) -> None:
        self._started: dict[UUID, list[BaseMessage]] = {}
        self.calls: list[tuple[list[BaseMessage], AIMessage | None]] = []
        self._lock = threading.Lock()

    def on_chat_model_start(self, serialized: Any, messages: list[list[BaseMessage]], *, run_id: UUID,
                            **kwargs: Any) -> None:
        with self._lock:
            self._started[run_id] = list(messages[0]) if messages else []

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            sent = self._started.pop(run_id, None)
            if sent is None:
                return
            generations = response.generations[0] if response.generations else []
            message = getattr(generations[0], "message", None) if generations else None
            self.calls.append((sent, message if isinstance(message, AIMessage) else None))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._started.pop(run_id, None)

    def received(self, answer: AIMessage | None) -> list[BaseMessage] | None:
        """The messages of the call that gave `answer` (the last such call), or None when no
        recorded call gave it (then the model's input is not known)."""
        if answer is None:
            return None
        with self._lock:
            calls = list(self.calls)
        for sent, out in reversed(calls):  # the same id and the same content: an answer edited after
            if out is not None and out.id == answer.id and _same(out, answer):  # the model is not the model's
                return sent
        return None


def _same(a: AIMessage, b: AIMessage) -> bool:
    calls = lambda m: [(c.get("name"), c.get("args"), c.get("id")) for c in m.tool_calls] + [  # noqa: E731
        (c.get("name"), c.get("args"), c.get("id")) for c in m.invalid_tool_calls]
    return a.content == b.content and calls(a) == calls(b)


_recorder: ContextVar[ModelCalls | None] = ContextVar("ifc_model_calls", default=None)
register_configure_hook(_recorder, inheritable=True)


@contextlib.contextmanager
def recording() -> Iterator[ModelCalls]:
    """Record the chat-model calls started inside the block (in this context and its children)."""
    calls = ModelCalls()
    token = _recorder.set(calls)
    try:
        yield calls
    finally:
        _recorder.reset(token)


def shown_as(messages: Sequence[BaseMessage]) -> list[Any]:
    """A request's messages in a form that compares what was labelled with what was sent: each
    message's type, text, tool calls (with their arguments), the call a tool message answers, and
    the extra fields a provider may send on."""
    import json

    from ._convert import text_of

    def form(m: BaseMessage) -> Any:
        calls = [(c.get("name"), c.get("args"), c.get("id")) for c in getattr(m, "tool_calls", None) or []]
        invalid = [(c.get("name"), c.get("args"), c.get("id")) for c in getattr(m, "invalid_tool_calls", None) or []]
        extra = json.dumps(m.additional_kwargs, sort_keys=True, default=str)
        return (m.type, text_of(m.content), calls, invalid, getattr(m, "tool_call_id", None), m.name, extra)

    return [form(m) for m in messages]
