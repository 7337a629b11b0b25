"""`IFCEventHandler`: label tracking through LlamaIndex's instrumentation dispatcher."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from contextvars import ContextVar
from typing import Any

from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from llama_index.core.instrumentation.events.query import QueryStartEvent
from llama_index.core.instrumentation.events.retrieval import RetrievalEndEvent, RetrievalStartEvent
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.schema import NodeWithScore
from llama_index.core.tools import ToolOutput
from llama_index_instrumentation.dispatcher import active_span_id
from pydantic import ConfigDict, PrivateAttr

from ifc_core import AuditLog, FlowTracker, Label, LabelCodec, Policy, Propagator

from ._convert import node_source

__all__ = ["IFCEventHandler"]

_QUESTION_ARGS = ("user_msg", "str_or_query_bundle", "query_str", "message")

# Set while IFCLLM calls its inner model, so that the handler does not label those calls again.
INSIDE_ENFORCE: ContextVar[bool] = ContextVar("ifc_inside_enforce", default=False)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    for attr in ("query_str", "content"):
        if isinstance(getattr(value, attr, None), str):
            return getattr(value, attr)
    return ""


def _react_action(text: str) -> tuple[str, list[dict[str, Any]]]:
    """A ReAct step ("Thought: ... Action: tool / Action Input: {...}") as its thought and tool call,
    so that the call is scored in the same plain words as a function call."""
    from llama_index.core.agent.react.output_parser import ReActOutputParser
    from llama_index.core.agent.react.types import ActionReasoningStep

    try:
        step = ReActOutputParser().parse(text)
    except Exception:  # not a ReAct action: score the text as it is
        return text, []
    if isinstance(step, ActionReasoningStep):
        return step.thought, [{"name": step.action, "args": step.action_input}]
    return text, []


class _RunSpans(BaseSpanHandler[SimpleSpan]):
    """Maps every span to the root span of its run, and sees tool results as spans exit."""

    _owner: Any = PrivateAttr(default=None)
    _roots: dict[str, str] = PrivateAttr(default_factory=dict)
    _guard: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def class_name(cls) -> str:
        return "IFCRunSpans"

    def root(self, span_id: str | None) -> str | None:
        with self._guard:
            return self._roots.get(span_id) if span_id else None

    def new_span(self, id_: str, bound_args: Any, instance: Any = None, parent_span_id: str | None = None,
                 tags: dict[str, Any] | None = None, **kwargs: Any) -> SimpleSpan:
        with self._guard:
            root = self._roots.get(parent_span_id, parent_span_id) if parent_span_id else None
            self._roots[id_] = root or id_
        if root is None:  # a new run: its question is in the root call's arguments
            args = dict(getattr(bound_args, "arguments", {}))
            args.update(args.pop("kwargs", None) or {})
            start = args.get("start_event")  # workflows: the run's arguments travel in its start event
            if start is not None and hasattr(start, "get"):
                args.update({a: start.get(a) for a in _QUESTION_ARGS if start.get(a) is not None})
            question = next((_text(args[a]) for a in _QUESTION_ARGS if a in args), "")
            if question:
                self._owner.tracker.set_query(id_, question)
        return SimpleSpan(id_=id_, parent_id=parent_span_id)

    def prepare_to_exit_span(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None,
                             **kwargs: Any) -> None:
        if isinstance(result, ToolOutput) and not result.is_error:
            key = self.root(id_)
            if key is not None:
                self._owner._tool_result(key, result)
        self._forget(id_)

    def prepare_to_drop_span(self, id_: str, bound_args: Any, instance: Any = None, err: BaseException | None = None,
                             **kwargs: Any) -> None:
        self._forget(id_)

    def _forget(self, id_: str) -> None:
        with self._guard:
            if self._roots.get(id_) == id_:  # the root span ended: drop its whole subtree
                for span in [s for s, r in self._roots.items() if r == id_]:
                    del self._roots[span]
                self._owner._last_response.pop(id_, None)
                self._owner.tracker.finish(id_)


class IFCEventHandler(BaseEventHandler):
    """Labels every LLM output a run produces, from the labelled nodes and tool results of that run.

    Attach it once with ``IFCEventHandler.create(...).attach()``. It registers an event handler
    and a span handler on LlamaIndex's root dispatcher. The dispatcher is process-global, so state
    is kept per run: every event is traced to the root span of its run, and concurrent runs never
    mix. Each output is labelled in estimate mode and written to the audit log, if one is given.

    **It cannot block anything.** The dispatcher swallows every exception a handler raises. To
    stop a tool call, wrap the tool with `guard_tool`, which asks this handler for the label.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tracker: FlowTracker
    codec: LabelCodec
    _spans: _RunSpans = PrivateAttr()
    _last_response: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._spans = _RunSpans()
        self._spans._owner = self

    @classmethod
    def create(cls, propagator: Propagator | str, policy: Policy, *, query_label: Label | Any,
               audit: AuditLog | None = None) -> IFCEventHandler:
        if not isinstance(query_label, Label):
            query_label = policy.lattice.label(query_label, field="query_label")
        tracker = FlowTracker(propagator, policy, query_label=query_label, audit=audit)
        return cls(tracker=tracker, codec=LabelCodec(policy.lattice))

    @classmethod
    def class_name(cls) -> str:
        return "IFCEventHandler"

    def attach(self) -> IFCEventHandler:
        """Register with the root dispatcher (returns self)."""
        dispatcher = get_dispatcher()
        dispatcher.add_event_handler(self)
        dispatcher.add_span_handler(self._spans)
        return self

    def detach(self) -> None:
        """Unregister from the root dispatcher."""
        dispatcher = get_dispatcher()
        dispatcher.event_handlers = [h for h in dispatcher.event_handlers if h is not self]
        dispatcher.span_handlers = [h for h in dispatcher.span_handlers if h is not self._spans]

    def current_run(self) -> Hashable | None:
        """The run the calling code belongs to (its root span id), if any."""
        return self._spans.root(active_span_id.get())

    def _tool_result(self, key: Hashable, output: Any) -> None:
        raw = output.raw_output
        raw = raw.raw_output if isinstance(raw, ToolOutput) else raw  # FunctionTool wraps a returned ToolOutput
        nodes = raw if isinstance(raw, list) else []
        if nodes and all(isinstance(n, NodeWithScore) for n in nodes):
            for node in nodes:  # a labelled retriever tool: its nodes keep their labels
                source, missing = node_source(node, self.codec)
                self.tracker.add_source(key, source, unlabelled=missing)
            return
        self.tracker.add_tool_result(key, output.tool_name, str(output.content), str(id(output)))

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        key = self._spans.root(event.span_id)
        if key is None or INSIDE_ENFORCE.get():
            return
        if isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            # async LLM calls wrap sync ones: both end events carry the same response; label it once
            if event.response is None or self._last_response.get(key) is event.response:
                return
            self._last_response[key] = event.response
        if isinstance(event, (RetrievalStartEvent, QueryStartEvent)):
            if not self.tracker.state(key).query:
                self.tracker.set_query(key, _text(getattr(event, "str_or_query_bundle", None) or
                                                  getattr(event, "query", "")))
        elif isinstance(event, RetrievalEndEvent):
            for node in event.nodes:
                source, missing = node_source(node, self.codec)
                self.tracker.add_source(key, source, unlabelled=missing)
        elif isinstance(event, LLMChatEndEvent):
            message = event.response.message
            if event.response.additional_kwargs.get("ifc_enforced") or message.additional_kwargs.get("ifc_enforced"):
                return  # IFCLLM recorded it already
            calls = [{"name": b.tool_name, "args": b.tool_kwargs, "id": b.tool_call_id}
                     for b in message.blocks if isinstance(b, ToolCallBlock)]
            content, calls = (message.content or "", calls) if calls else _react_action(message.content or "")
            self.tracker.label_output(key, content, calls)
        elif isinstance(event, LLMCompletionEndEvent):
            if not event.response.additional_kwargs.get("ifc_enforced"):  # IFCLLM recorded it already
                self.tracker.label_output(key, event.response.text)
