"""`IFCLLM`: enforce mode for LlamaIndex. Answers are regenerated from the admitted sources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.llms import LLM, CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import ConfigDict

from ifc_core._verbatim import enforce_in_prompt, strip_sources

from ._events import INSIDE_ENFORCE, IFCEventHandler

__all__ = ["IFCLLM"]


class IFCLLM(CustomLLM):
    """Wraps an LLM so that its answers carry a label that is sound by construction.

    For each completion: answer with the inner LLM; find the run's labelled sources (those the
    attached `IFCEventHandler` collected) verbatim in the prompt; find the label with the
    permissive search; if sources are withheld, remove their text and answer again. The response
    says its label in ``additional_kwargs["ifc_label"]`` and what it saw in ``["ifc_admitted"]``.
    Sources not found verbatim cannot be removed, so their labels always count.
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
        run = self.ifc.current_run()
        tracker = self.ifc.tracker
        sources = tracker.sources(run)

        def generate(withheld: list[Any]) -> str:
            token = INSIDE_ENFORCE.set(True)
            try:
                # IFCLLM formats nothing itself, so the inner model always applies its own template
                # (LLM.predict passes formatted=True once *our* formatting is done).
                return self.inner.complete(strip_sources(prompt, withheld) if withheld else prompt,
                                           formatted=False, **kwargs).text
            finally:
                INSIDE_ENFORCE.reset(token)

        decision = enforce_in_prompt(tracker.propagator, tracker.query_label, sources, [prompt], generate,
                                     id=str(run))
        if run is not None:
            tracker.record(run, decision)
        return CompletionResponse(text=decision.output, additional_kwargs={
            "ifc_label": decision.label.to_json(), "ifc_admitted": decision.admitted, "ifc_enforced": True})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt, formatted=formatted, **kwargs)  # the label needs the whole answer

        def gen() -> Iterator[CompletionResponse]:
            yield CompletionResponse(text=response.text, delta=response.text,
                                     additional_kwargs=response.additional_kwargs)

        return gen()
