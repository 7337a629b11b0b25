"""`IFCChatModel`: enforce mode for chains and agents. The answer is regenerated from the admitted sources."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict

from ifc_core import IFC_META_KEY

from ._callback import IFCCallbackHandler
from ._convert import prompt_messages, text_of, with_text

__all__ = ["IFCChatModel"]


class IFCChatModel(BaseChatModel):
    """Wraps a chat model so that its answers, tool calls included, carry a label that is sound
    by construction.

    For each call: generate with the inner model; split the prompt by origin with what the
    attached `IFCCallbackHandler` knows of the run (its labelled sources, the user's request, the
    templates, tool results, earlier answers); find the label with the permissive search; if
    parts are withheld, generate again without them. If the answer then calls a tool whose sink
    its label exceeds, it is generated once more without the parts above that sink
    (``sink_retry``). The released message carries its label in ``response_metadata["ifc_label"]``,
    what it saw in ``["ifc_admitted"]`` and a sealed copy of its label in ``["ifc"]``. With no handler
    attached to the run nothing is registered: the answer is ⊤.

    `inner` may be any chat model (a hosted one too): the scorer is the handler's propagator's.
    `bind_tools` and `with_structured_output` keep the enforcement. Streaming yields the released
    answer whole, in one chunk: the label needs the whole answer, and tokens of an answer that
    is then withdrawn must never be seen.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: Runnable
    ifc: IFCCallbackHandler
    sink_retry: bool = True

    @property
    def _llm_type(self) -> str:
        return "ifc-enforce"

    def _model(self) -> Any:
        """The chat model behind any bindings of `inner`."""
        model = self.inner
        while not isinstance(model, BaseChatModel) and hasattr(model, "bound"):
            model = model.bound
        return model

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        model = self._model()
        return model._get_ls_params(stop=stop, **kwargs) if isinstance(model, BaseChatModel) else {}

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable:
        """This model with `tools` bound; each call binds them to the inner model, so the tool calls
        stay behind the enforcement."""
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _call_inner(self, messages: list[BaseMessage], **kwargs: Any) -> BaseMessage:
        # The inner calls are this model's implementation: callbacks see this model's run only.
        run_id = uuid.uuid4()
        self.ifc.tracker.register_enforced(run_id)  # the wrapper records this call's decision itself
        inner = self.inner
        if "tools" in kwargs:  # bound with bind_tools: bind them to the inner model, with their options
            tools = kwargs.pop("tools")
            options = {k: kwargs.pop(k) for k in ("tool_choice", "parallel_tool_calls", "strict") if k in kwargs}
            inner = self._model().bind_tools(tools, **options)
        answer = inner.invoke(messages, config={"callbacks": [], "run_id": run_id}, **kwargs)
        return answer if isinstance(answer, BaseMessage) else AIMessage(str(answer))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if stop is not None:
            kwargs["stop"] = stop
        tracker = self.ifc.tracker
        run_id = run_manager.run_id if run_manager is not None else self.ifc.current_model_run()
        key = None
        if run_id is not None:
            key = self.ifc.key_of(run_id)
            tracker.register_enforced(run_id)
        answers: list[BaseMessage] = []

        def generate(texts: list[str] | None) -> tuple[str, list[Any]]:
            shown = messages if texts is None else [with_text(m, t) for m, t in zip(messages, texts)]
            answers.append(self._call_inner(shown, **kwargs))
            return text_of(answers[-1].content), list(getattr(answers[-1], "tool_calls", []) or [])

        decision, content, calls = tracker.enforce(key, prompt_messages(messages), generate,
                                                   sink_retry=self.sink_retry)
        answer = answers[-1]
        meta = {**answer.response_metadata, "ifc_label": decision.label.to_json(),
                "ifc_admitted": decision.admitted, IFC_META_KEY: tracker.seal_output(content, calls, decision.label)}
        message = AIMessage(content=answer.content, response_metadata=meta, tool_calls=calls,
                            usage_metadata=getattr(answer, "usage_metadata", None))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        """The released answer as one chunk (the label needs the whole answer; tokens of an answer
        that is withdrawn must never be seen)."""
        message = self._generate(messages, stop, run_manager, **kwargs).generations[0].message
        assert isinstance(message, AIMessage)
        chunk = AIMessageChunk(
            content=message.content, response_metadata=message.response_metadata,
            usage_metadata=message.usage_metadata, chunk_position="last",
            tool_call_chunks=[{"name": c["name"], "args": json.dumps(c["args"], ensure_ascii=False), "id": c.get("id"),
                               "index": i} for i, c in enumerate(message.tool_calls)])
        yield ChatGenerationChunk(message=chunk)
