"""`IFCEventHandler`: label tracking through LlamaIndex's instrumentation dispatcher."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import (LLMChatEndEvent, LLMChatStartEvent, LLMCompletionEndEvent,
                                                          LLMCompletionStartEvent, LLMPredictStartEvent)
from llama_index.core.instrumentation.events.retrieval import RetrievalEndEvent
from llama_index.core.schema import NodeWithScore
from llama_index.core.tools import ToolOutput
from llama_index_instrumentation.dispatcher import active_span_id
from pydantic import ConfigDict, PrivateAttr

from ifc_core import AuditError, AuditLog, FlowTracker, Label, Policy, PromptMessage, Propagator

from ._convert import (OBSERVATION, message_text, node_view, prompt_literals, prompt_messages,
                       react_action, tool_calls_of)
from ._run_spans import RunSpans

__all__ = ["IFCEventHandler", "ANSWER_KEY"]

ANSWER_KEY = "ifc_answer"  # where a query engine's Response carries the answer's label and decision


def _seen(event: Any) -> tuple[str, str]:
    """(prompt, output) of an LLM end event, to tell one output reported twice."""
    if isinstance(event, LLMCompletionEndEvent):
        return event.prompt, event.response.text
    return (repr([(m.role, m.content) for m in event.messages]), repr(event.response.message))


class IFCEventHandler(BaseEventHandler):
    """Labels every LLM output a run produces, from the prompt that produced it.

    Attach it once with ``IFCEventHandler.create(...).attach()``. It registers an event handler
    and a span handler on LlamaIndex's root dispatcher. The dispatcher is process-global, so state
    is kept per run: every event is traced to the root span of its run, and concurrent runs never
    mix. Each output is labelled in estimate mode and written to the audit log, if one is given.

    **It cannot block anything.** The dispatcher swallows every exception a handler raises. To
    stop a tool call, wrap the tool with `guard_tool`, which asks this handler for the label. For
    the same reason a failed audit write is kept in `errors`: `guard_tool` and `IFCLLM` then
    refuse to go on, and `raise_for_errors()` raises it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    tracker: FlowTracker
    _spans: RunSpans = PrivateAttr()
    _last_response: dict[str, Any] = PrivateAttr(default_factory=dict)
    _errors: list[AuditError] = PrivateAttr(default_factory=list)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._spans = RunSpans()
        self._spans._owner = self

    @classmethod
    def create(cls, propagator: Propagator | str, policy: Policy, *, query_label: Label | Any,
               audit: AuditLog | None = None, system_prompts: Sequence[str] = ()) -> IFCEventHandler:
        """A handler with its own `FlowTracker`. `system_prompts` are fixed system texts of the
        application beyond those it finds itself (an agent's ``system_prompt``, prompt templates)."""
        return cls(tracker=FlowTracker(propagator, policy, query_label=query_label, audit=audit,
                                       system_prompts=system_prompts))

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

    @property
    def errors(self) -> list[AuditError]:
        """Audit writes that failed (the dispatcher would have swallowed them)."""
        return list(self._errors)

    def raise_for_errors(self) -> None:
        """Raise the first failed audit write, if any."""
        if self._errors:
            raise self._errors[0]

    def current_run(self) -> Hashable | None:
        """The run the calling code belongs to (its root span id), if any."""
        return self._spans.root(active_span_id.get())

    def current_tool_call(self) -> str | None:
        """The id of the agent's tool call the calling code runs inside, if any."""
        return self._spans.tool_call_id(active_span_id.get())

    def enforced_span(self, span_id: str | None) -> bool:
        """Whether `span_id` runs inside an `IFCLLM` call (which records its decision itself)."""
        return any(self.tracker.is_enforced(s) for s in self._spans.ancestry(span_id))

    def _annotate(self, key: Hashable, response: Any, streamed: str | None = None) -> None:
        """Put the answer's own label on the response, under a key no document uses:
        ``response.metadata["ifc_answer"]`` (the nodes' ``ifc_label`` are the documents')."""
        text = getattr(response, "response", None)
        text = text if isinstance(text, str) else streamed  # a stream: what the caller read
        label, decision = self.tracker.answer_of(key, text if isinstance(text, str) else None)
        if label is None:
            return
        if response.metadata is None:
            response.metadata = {}
        # an answer that is no single output (a synthesizer that refined or combined outputs)
        # carries the join of the run's labels, and no one decision speaks for it
        response.metadata[ANSWER_KEY] = {"label": label.to_json(), "mode": decision.mode if decision else None,
                                         "admitted": decision.admitted if decision else None,
                                         "decision": decision.to_dict() if decision else None}

    def _tool_result(self, key: Hashable, output: Any, result_id: str) -> None:
        raw = output.raw_output
        raw = raw.raw_output if isinstance(raw, ToolOutput) else raw  # FunctionTool wraps a returned ToolOutput
        nodes = raw if isinstance(raw, list) and raw and all(isinstance(n, NodeWithScore) for n in raw) else []
        self.tracker.add_tool_result(key, output.tool_name, str(output.content), result_id,
                                     [node_view(n) for n in nodes], raw)  # raw: for the policy's labeller

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        key = self._spans.root(event.span_id)
        if key is None or self.enforced_span(event.span_id):
            return
        try:
            self._handle(key, event)
        except AuditError as exc:  # the dispatcher would swallow it: keep it for guard_tool and IFCLLM
            self._errors.append(exc)

    def _handle(self, key: Hashable, event: BaseEvent) -> None:
        from ._retriever import IFCLabelledNodes

        if isinstance(event, (LLMChatStartEvent, LLMCompletionStartEvent)):
            self._spans.mark_llm(event.span_id)
            return
        if isinstance(event, (LLMChatEndEvent, LLMCompletionEndEvent)):
            # an LLM call inside another (async wrapping sync, streaming wrapping complete): the
            # outer call's output is the one released; label that one, once
            if event.response is None or self._spans.inside_llm(event.span_id):
                return
            seen = _seen(event)  # the same prompt answered the same way: one output, however nested
            if self._last_response.get(key) == seen:
                return
            self._last_response[key] = seen
        if isinstance(event, LLMPredictStartEvent):
            self.tracker.add_template(key, prompt_literals(event.template))
        elif isinstance(event, (RetrievalEndEvent, IFCLabelledNodes)):
            for node in event.nodes:
                self.tracker.add_document(key, node_view(node))
        elif isinstance(event, LLMChatEndEvent):
            message = event.response.message
            calls, shown = tool_calls_of(message), None
            content = message_text(message)
            if not calls:
                content, calls, shown = react_action(content)
            decision = self.tracker.label_output(key, content, calls, prompt=prompt_messages(event.messages),
                                                 message_id=message.additional_kwargs.get("id"))
            if shown is not None:  # the agent's own rendering of the step, in its later prompts
                self.tracker.record_answer(key, shown, decision.label)
                self.tracker.add_template(key, [OBSERVATION])
        elif isinstance(event, LLMCompletionEndEvent):
            self.tracker.label_output(key, event.response.text, prompt=[PromptMessage("user", event.prompt)])
