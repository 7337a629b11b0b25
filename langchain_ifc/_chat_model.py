"""`IFCChatModel`: enforce mode for chains. The answer is regenerated from the admitted sources."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.callbacks import CallbackManager, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from ifc_core import IFC_META_KEY

from ._callback import IFCCallbackHandler
from ._convert import prompt_messages, text_of, with_text

__all__ = ["IFCChatModel"]


class IFCChatModel(BaseChatModel):
    """Wraps a chat model so that its answers carry a label that is sound by construction.

    For each call: generate with the inner model; split the prompt by origin with what the
    attached `IFCCallbackHandler` knows of the run (its labelled sources, the user's request, the
    templates, earlier answers); find the label with the permissive search; if parts are
    withheld, remove their text from the messages and generate again. The released message
    carries its label in ``response_metadata["ifc_label"]``, what it saw in ``["ifc_admitted"]``,
    and a sealed copy of its label in ``["ifc"]`` that later prompts can trust. Sources of the run
    that the prompt does not show verbatim cannot be removed, so their labels always count. With
    no handler attached to the run, nothing is registered and the answer is ⊤.
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
        run_id = uuid.uuid4()
        self.ifc.tracker.register_enforced(run_id)  # the wrapper records this call's decision itself
        return self.inner.invoke(messages, config={"callbacks": callbacks, "run_id": run_id}, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if stop is not None:
            kwargs["stop"] = stop
        tracker = self.ifc.tracker
        key = None
        if run_manager is not None:
            key = self.ifc.key_of(run_manager.run_id)
            tracker.register_enforced(run_manager.run_id)
        answers: list[BaseMessage] = []

        def generate(texts: list[str] | None) -> tuple[str, list[Any]]:
            shown = messages if texts is None else [with_text(m, t) for m, t in zip(messages, texts)]
            answers.append(self._call_inner(shown, run_manager, **kwargs))
            return text_of(answers[-1].content), list(getattr(answers[-1], "tool_calls", []) or [])

        decision, content, calls = tracker.enforce(key, prompt_messages(messages), generate)
        answer = answers[-1]
        meta = {**answer.response_metadata, "ifc_label": decision.label.to_json(),
                "ifc_admitted": decision.admitted, IFC_META_KEY: tracker.seal_output(content, calls, decision.label)}
        message = AIMessage(content=answer.content, response_metadata=meta, tool_calls=calls)
        return ChatResult(generations=[ChatGeneration(message=message)])
