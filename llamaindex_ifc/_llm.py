"""`IFCLLM`: enforce mode for LlamaIndex, for query engines and agents (function calling and ReAct)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, ChatResponseAsyncGen, ChatResponseGen,
                                              CompletionResponse, CompletionResponseGen, LLMMetadata, ToolCallBlock)
from llama_index.core.llms import LLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index_instrumentation.dispatcher import active_span_id
from pydantic import ConfigDict

from ifc_core import IFC_META_KEY, Decision, PromptMessage

from ._convert import OBSERVATION, message_text, prompt_messages, react_action, tool_calls_of, with_text
from ._events import IFCEventHandler

__all__ = ["IFCLLM"]


class IFCLLM(FunctionCallingLLM):
    """Wraps an LLM so that its answers, tool calls included, carry a label that is sound by
    construction.

    For each call: answer with the inner LLM; split the prompt by origin with what the attached
    `IFCEventHandler` knows of the run (its labelled sources, the user's request, the templates,
    tool results, earlier answers); find the label with the permissive search; if parts are
    withheld, answer again without them. If the answer then calls a tool whose sink its label
    exceeds, it is generated once more without the parts above that sink (``sink_retry``). The
    response says its label in ``additional_kwargs["ifc_label"]``, what it saw in
    ``["ifc_admitted"]``, and carries a sealed copy of its label in ``["ifc"]``. With no handler
    attached nothing is registered: the answer is ⊤.

    Use it as a query engine's LLM, as a `FunctionAgent`'s (it is a function-calling LLM when the
    inner one is) or a `ReActAgent`'s. Streaming yields the released answer only, in one piece.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: LLM
    ifc: IFCEventHandler
    sink_retry: bool = True

    @classmethod
    def class_name(cls) -> str:
        return "IFCLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return self.inner.metadata

    def _claim(self) -> None:
        """This call's span is the wrapper's: the handler skips it and everything inside it (the
        wrapper records its decision itself)."""
        span = active_span_id.get()
        if span is not None:
            self.ifc.tracker.register_enforced(span)

    def _enforce(self, prompt: list[PromptMessage], answer: Any) -> tuple[Decision, Any]:
        """Run `answer(texts)` (None: the prompt as it is) under the tracker's enforce mode;
        returns the decision and the released raw answer."""
        self.ifc.raise_for_errors()
        self._claim()
        tracker = self.ifc.tracker
        run = self.ifc.current_run()
        answers: list[Any] = []
        shown: list[str | None] = []

        def generate(texts: list[str] | None) -> tuple[str, list[Any]]:
            answers.append(answer(texts))
            content, calls, rendering = self._calls_of(answers[-1])
            shown.append(rendering)
            return content, calls

        decision, content, calls = tracker.enforce(run, prompt, generate, sink_retry=self.sink_retry)
        if run is not None and shown[-1] is not None:  # a ReAct step, as the agent will show it later
            tracker.record_answer(run, shown[-1], decision.label)
            tracker.add_template(run, [OBSERVATION])
        return decision, answers[-1]

    def _calls_of(self, raw: Any) -> tuple[str, list[dict[str, Any]], str | None]:
        if isinstance(raw, CompletionResponse):
            return raw.text, [], None
        calls = tool_calls_of(raw.message)
        if calls:
            return message_text(raw.message), calls, None
        return react_action(message_text(raw.message))

    def _labelled(self, decision: Decision, text: str, calls: list[Any]) -> dict[str, Any]:
        return {"ifc_label": decision.label.to_json(), "ifc_admitted": decision.admitted,
                IFC_META_KEY: self.ifc.tracker.seal_output(text, calls, decision.label)}

    # -- completion ------------------------------------------------------------------------
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        # IFCLLM formats nothing itself, so the inner model always applies its own template
        # (LLM.predict passes formatted=True once *our* formatting is done).
        decision, raw = self._enforce([PromptMessage("user", prompt)], lambda texts: self.inner.complete(
            prompt if texts is None else texts[0], formatted=False, **kwargs))
        return CompletionResponse(text=raw.text, additional_kwargs=self._labelled(decision, raw.text, []))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self._claim()
        response = self.complete(prompt, formatted=formatted, **kwargs)  # the label needs the whole answer

        def gen() -> Iterator[CompletionResponse]:
            yield CompletionResponse(text=response.text, delta=response.text,
                                     additional_kwargs=response.additional_kwargs)

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self._claim()
        return await asyncio.to_thread(self.complete, prompt, formatted, **kwargs)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        self._claim()
        response = await self.acomplete(prompt, formatted=formatted, **kwargs)

        async def gen() -> AsyncIterator[CompletionResponse]:
            yield CompletionResponse(text=response.text, delta=response.text,
                                     additional_kwargs=response.additional_kwargs)

        return gen()

    # -- chat ------------------------------------------------------------------------------
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        messages = list(messages)
        decision, raw = self._enforce(prompt_messages(messages), lambda texts: self.inner.chat(
            messages if texts is None else [with_text(m, t) for m, t in zip(messages, texts)], **kwargs))
        message = raw.message.model_copy(deep=True)
        content, calls, _ = self._calls_of(raw)
        message.additional_kwargs.update(self._labelled(decision, content, calls))
        return ChatResponse(message=message, raw=raw.raw, additional_kwargs=raw.additional_kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        self._claim()
        response = self.chat(messages, **kwargs)

        def gen() -> Iterator[ChatResponse]:
            yield ChatResponse(message=response.message, delta=response.message.content or "", raw=response.raw)

        return gen()

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        self._claim()
        return await asyncio.to_thread(self.chat, messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        self._claim()
        response = await self.achat(messages, **kwargs)

        async def gen() -> AsyncIterator[ChatResponse]:
            yield ChatResponse(message=response.message, delta=response.message.content or "", raw=response.raw)

        return gen()

    # -- function calling: the inner model's own ---------------------------------------------
    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Any = None,
                                 chat_history: list[ChatMessage] | None = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict[str, Any]:
        if not isinstance(self.inner, FunctionCallingLLM):
            raise TypeError(f"{type(self.inner).__name__} is not a function-calling LLM; use a ReActAgent")
        return self.inner._prepare_chat_with_tools_compat(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs)

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list[Any]:
        if isinstance(self.inner, FunctionCallingLLM):
            return self.inner.get_tool_calls_from_response(response, error_on_no_tool_call=error_on_no_tool_call,
                                                           **kwargs)
        return [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
