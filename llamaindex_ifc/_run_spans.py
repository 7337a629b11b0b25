"""The span tree of LlamaIndex runs (`RunSpans`): which run every span belongs to, the tool call
a span runs, and the ends of runs and streams. `IFCEventHandler` owns one and is called back
with what it finds (a run's request, its application text, tool results, answers)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from llama_index.core.base.response.schema import AsyncStreamingResponse, Response, StreamingResponse
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.tools import ToolOutput
from llama_index_instrumentation.dispatcher import active_span_id
from pydantic import PrivateAttr

from ._convert import application_texts

__all__ = ["RunSpans"]

_END = object()  # a stream's end


@contextlib.contextmanager
def _in_span(root: str) -> Iterator[None]:
    """Run the block as part of run `root` (a stream is read after its run's span closed)."""
    token = active_span_id.set(root)
    try:
        yield
    finally:
        active_span_id.reset(token)


_APPLICATION_ATTRS = ("system_prompt", "formatter", "agents", "_prefix_messages", "_context_template",
                      "_system_prompt")
_QUESTION_ARGS = ("user_msg", "str_or_query_bundle", "query_str", "message", "query")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    for attr in ("query_str", "content"):
        if isinstance(getattr(value, attr, None), str):
            return getattr(value, attr)
    return ""


def _requests(args: dict[str, Any]) -> list[str]:
    """The texts the user authored in a run's arguments (the user turns of a chat history too)."""
    texts = [_text(args[a]) for a in _QUESTION_ARGS if a in args]
    for m in args.get("chat_history") or []:
        if str(getattr(getattr(m, "role", None), "value", "")) == "user":
            texts.append(_text(m))
    return [t for t in texts if t]


class RunSpans(BaseSpanHandler[SimpleSpan]):
    """The span tree: the root (run) of every span, the tool call a span runs, and tool results."""

    _owner: Any = PrivateAttr(default=None)
    _parents: dict[str, str | None] = PrivateAttr(default_factory=dict)
    _roots: dict[str, str] = PrivateAttr(default_factory=dict)
    _tool_ids: dict[str, str] = PrivateAttr(default_factory=dict)
    _llm: set[str] = PrivateAttr(default_factory=set)
    _instances: set[tuple[int, str]] = PrivateAttr(default_factory=set)  # (agent, run) registered
    _guard: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def class_name(cls) -> str:
        return "IFCRunSpans"

    def root(self, span_id: str | None) -> str | None:
        with self._guard:
            return self._roots.get(span_id) if span_id else None

    def ancestry(self, span_id: str | None) -> list[str]:
        """`span_id` and its ancestors, innermost first."""
        chain = []
        with self._guard:
            while span_id and span_id in self._parents and len(chain) < 256:
                chain.append(span_id)
                span_id = self._parents[span_id]
        return chain

    def mark_llm(self, span_id: str | None) -> None:
        """`span_id` is an LLM call (its start event was seen)."""
        if span_id:
            with self._guard:
                self._llm.add(span_id)

    def inside_llm(self, span_id: str | None) -> bool:
        """Whether `span_id` runs inside another LLM call."""
        ancestors = self.ancestry(span_id)[1:]
        with self._guard:
            return any(s in self._llm for s in ancestors)

    def tool_call_id(self, span_id: str | None) -> str | None:
        """The id of the agent's tool call that `span_id` runs inside (its `call_tool` step)."""
        for span in self.ancestry(span_id):
            with self._guard:
                if span in self._tool_ids:
                    return self._tool_ids[span]
        return None

    def new_span(self, id_: str, bound_args: Any, instance: Any = None, parent_span_id: str | None = None,
                 tags: dict[str, Any] | None = None, **kwargs: Any) -> SimpleSpan:
        args = dict(getattr(bound_args, "arguments", {}))
        args.update(args.pop("kwargs", None) or {})
        event = args.get("ev")
        with self._guard:
            root = self._roots.get(parent_span_id, parent_span_id) if parent_span_id else None
            self._roots[id_] = root or id_
            self._parents[id_] = parent_span_id
            if event is not None and isinstance(getattr(event, "tool_id", None), str) and hasattr(event, "tool_kwargs"):
                self._tool_ids[id_] = event.tool_id  # an agent's call_tool step
        if root is None:  # a new run: its request is in the root call's arguments
            start = args.get("start_event")  # workflows: the run's arguments travel in its start event
            if start is not None and hasattr(start, "get"):
                args.update({a: start.get(a) for a in (*_QUESTION_ARGS, "chat_history") if start.get(a) is not None})
            self._owner.tracker.begin(id_, _requests(args))
        if instance is not None and any(hasattr(instance, a) for a in _APPLICATION_ATTRS):
            with self._guard:
                first = (id(instance), root or id_) not in self._instances
                self._instances.add((id(instance), root or id_))
            if first:  # the agent or engine running this span: its fixed prompt text is the application's
                self._owner.tracker.add_template(root or id_, application_texts(instance))
        return SimpleSpan(id_=id_, parent_id=parent_span_id)

    def prepare_to_exit_span(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None,
                             **kwargs: Any) -> None:
        if isinstance(result, ToolOutput) and not result.is_error:
            key = self.root(id_)
            if key is not None:
                self._owner._tool_result(key, result, self.tool_call_id(id_) or id_)
        if self.root(id_) == id_ and isinstance(result, (StreamingResponse, AsyncStreamingResponse)) \
                and result.response_gen is not None:
            # the answer is generated as the caller reads the stream, after this span: keep the run
            # and make the stream's own spans part of it; it ends when the stream does
            self._stream_in_run(id_, result)
            return
        if self.root(id_) == id_ and isinstance(result, Response):
            self._owner._annotate(id_, result)
        self._forget(id_)

    def _stream_in_run(self, root: str, response: Any) -> None:
        owner = self._owner
        inner = response.response_gen
        parts: list[str] = []  # what the caller read: the answer, once the stream has ended

        def finish() -> None:
            owner._annotate(root, response, "".join(parts))
            self._forget(root)

        if isinstance(response, StreamingResponse):
            def gen() -> Any:
                try:
                    while True:
                        with _in_span(root):
                            item = next(inner, _END)
                        if item is _END:
                            return
                        parts.append(str(item))
                        yield item
                finally:
                    finish()
            response.response_gen = gen()
        else:
            async def agen() -> Any:
                try:
                    while True:
                        with _in_span(root):
                            item = await anext(inner, _END)
                        if item is _END:
                            return
                        parts.append(str(item))
                        yield item
                finally:
                    finish()
            response.response_gen = agen()

    def prepare_to_drop_span(self, id_: str, bound_args: Any, instance: Any = None, err: BaseException | None = None,
                             **kwargs: Any) -> None:
        self._forget(id_)

    def _forget(self, id_: str) -> None:
        with self._guard:
            if self._roots.get(id_) != id_:
                return
            for span in [s for s, r in self._roots.items() if r == id_]:  # the run ended: drop its tree
                del self._roots[span]
                self._parents.pop(span, None)
                self._tool_ids.pop(span, None)
                self._llm.discard(span)
            self._instances = {i for i in self._instances if i[1] != id_}
        self._owner._last_response.pop(id_, None)
        self._owner.tracker.finish(id_)
