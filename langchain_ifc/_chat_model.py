"""`IFCChatModel`: enforce mode for chains. The answer is regenerated from the admitted sources."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManager, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from ifc_core._verbatim import enforce_in_prompt, strip_sources

from ._callback import INTERNAL_TAG, IFCCallbackHandler
from ._convert import text_of

__all__ = ["IFCChatModel"]


class IFCChatModel(BaseChatModel):
    """Wraps a chat model so that its answers carry a label that is sound by construction.

    For each call: generate with the inner model; find the run's labelled sources (those the
    attached `IFCCallbackHandler` collected) verbatim in the messages; find the label with the
    permissive search; if some sources are withheld, remove their text from the messages and
    generate again. The returned message says its label in
    ``response_metadata["ifc_label"]`` and which sources it saw in ``["ifc_admitted"]``.
    Sources not found verbatim cannot be removed, so their labels always count.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    ifc: IFCCallbackHandler

    @property
    def _llm_type(self) -> str:
        return "ifc-enforce"

    def _call_inner(self, messages: list[BaseMessage], run_manager: CallbackManagerForLLMRun | None,
                    **kwargs: Any) -> BaseMessage:
        callbacks = None
        if run_manager is not None:  # children of this run, as ParentRunManager.get_child builds them
            callbacks = CallbackManager(
                handlers=run_manager.inheritable_handlers, inheritable_handlers=run_manager.inheritable_handlers,
                parent_run_id=run_manager.run_id, tags=run_manager.inheritable_tags,
                inheritable_tags=run_manager.inheritable_tags, metadata=run_manager.inheritable_metadata,
                inheritable_metadata=run_manager.inheritable_metadata,
            )
        config = {"callbacks": callbacks, "tags": [INTERNAL_TAG]}
        return self.inner.invoke(messages, config=config, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if stop is not None:
            kwargs["stop"] = stop
        key = self.ifc.key_of(run_manager.run_id) if run_manager else None
        tracker = self.ifc.tracker
        sources = tracker.sources(key)
        answers: list[BaseMessage] = []

        def generate(withheld: list[Any]) -> str:
            kept = [m.model_copy(update={"content": strip_sources(text_of(m.content), withheld)}) for m in messages]
            answers.append(self._call_inner(kept if withheld else messages, run_manager, **kwargs))
            return text_of(answers[-1].content)

        decision = enforce_in_prompt(tracker.propagator, tracker.query_label, sources,
                                     [text_of(m.content) for m in messages], generate, id=str(key))
        answer = answers[-1]
        if key is not None:
            tracker.record(key, decision, getattr(answer, "tool_calls", []) or [])
        meta = {**answer.response_metadata, "ifc_label": decision.label.to_json(),
                "ifc_admitted": decision.admitted, "ifc_enforced": True}
        message = AIMessage(content=answer.content, response_metadata=meta,
                            tool_calls=getattr(answer, "tool_calls", []) or [])
        return ChatResult(generations=[ChatGeneration(message=message)])
