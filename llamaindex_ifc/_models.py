"""The embedded model as a LlamaIndex LLM (needs the `dev` extra's llama-index-llms-huggingface)."""

from __future__ import annotations

from typing import Any

from ifc_core import DEFAULT_SYSTEM, HFScorer

__all__ = ["embedded_llm"]


def embedded_llm(scorer: HFScorer | None = None, *, max_new_tokens: int = 64, system: str = DEFAULT_SYSTEM) -> Any:
    """The embedded SmolLM2 (or `scorer`'s local model) as a `HuggingFaceLLM`, greedy decoding.

    It shares the scorer's weights and device (``device_map``), and wraps every completion prompt
    in the model's own chat template with `system` (``completion_to_prompt``): a chat-tuned model
    answers far better that way. It is not a function-calling LLM: use it with query engines and
    `ReActAgent`.
    """
    from llama_index.llms.huggingface import HuggingFaceLLM

    scorer = scorer or HFScorer.embedded()
    if not isinstance(scorer, HFScorer):
        raise TypeError(f"embedded_llm: give an HFScorer (a local model), not {type(scorer).__name__}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"embedded_llm.max_new_tokens: give a positive number, got {max_new_tokens!r}")

    def to_chat(prompt: str) -> str:
        return scorer.tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
            tokenize=False, add_generation_prompt=True)

    return HuggingFaceLLM(model=scorer.model, tokenizer=scorer.tokenizer, context_window=scorer.max_context,
                          max_new_tokens=max_new_tokens, generate_kwargs={"do_sample": False},
                          completion_to_prompt=to_chat, device_map=str(scorer.device))
