"""`IFCLLM`: enforce mode for LlamaIndex. Answers are regenerated from the admitted sources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.llms import LLM, CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index_instrumentation.dispatcher import active_span_id
from pydantic import ConfigDict

from ifc_core import IFC_META_KEY, PromptMessage

from ._events import IFCEventHandler

__all__ = ["IFCLLM"]


class IFCLLM(CustomLLM):
    """Wraps an LLM so that its answers carry a label that is sound by construction.

    For each completion: answer with the inner LLM; split the prompt by origin with what the
    attached `IFCEventHandler` knows of the run (its labelled sources, the user's request, the
    templates, earlier answers); find the label with the permissive search; if parts are
    withheld, remove their text and answer again. The response says its label in
    ``additional_kwargs["ifc_label"]``, what it saw in ``["ifc_admitted"]``, and carries a sealed
    copy of its label in ``["ifc"]``. With no handler attached nothing is registered: the answer
    is ⊤.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: LLM
    ifc: IFCEventHandler

    @classmethod
    def class_name(cls) -> str:
        return "IFCLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return self.inner.metadata

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.ifc.raise_for_errors()
        span = active_span_id.get()
        tracker = self.ifc.tracker
        if span is not None:
            tracker.register_enforced(span)  # the handler skips this call and everything inside it
        run = self.ifc.current_run()

        def generate(texts: list[str] | None) -> tuple[str, list[Any]]:
            # IFCLLM formats nothing itself, so the inner model always applies its own template
            # (LLM.predict passes formatted=True once *our* formatting is done).
            return self.inner.complete(prompt if texts is None else texts[0], formatted=False, **kwargs).text, []

        decision, text, _ = tracker.enforce(run, [PromptMessage("user", prompt)], generate)
        return CompletionResponse(text=text, additional_kwargs={
            "ifc_label": decision.label.to_json(), "ifc_admitted": decision.admitted,
            IFC_META_KEY: tracker.seal_output(text, [], decision.label)})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted, **kwargs)  # the label needs the whole answer

        def gen() -> Iterator[CompletionResponse]:
            yield CompletionResponse(text=response.text, delta=response.text,
                                     additional_kwargs=response.additional_kwargs)

        return gen()
