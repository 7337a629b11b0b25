"""The embedded model as a LangChain chat model (needs the `dev` extra's langchain-huggingface)."""

from __future__ import annotations

from typing import Any

from ifc_core import HFScorer

__all__ = ["embedded_chat_model"]


def embedded_chat_model(scorer: HFScorer | None = None, *, max_new_tokens: int = 64) -> Any:
    """The embedded SmolLM2 (or `scorer`'s local model) as a `ChatHuggingFace`, greedy decoding.

    It shares the scorer's weights, so loading costs nothing more. LangChain's local Hugging Face
    pipeline has no async generation: `ainvoke` runs the sync call in a thread (it works, one
    call at a time). It cannot call tools (a local pipeline has no tool-call parser): use it for
    chains, and a hosted or served chat model for agents.
    """
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import pipeline

    scorer = scorer or HFScorer.embedded()
    if not isinstance(scorer, HFScorer):
        raise TypeError(f"embedded_chat_model: give an HFScorer (a local model), not {type(scorer).__name__}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"embedded_chat_model.max_new_tokens: give a positive number, got {max_new_tokens!r}")
    pipe = pipeline("text-generation", model=scorer.model, tokenizer=scorer.tokenizer, max_new_tokens=max_new_tokens,
                    do_sample=False, return_full_text=False)
    return ChatHuggingFace(llm=HuggingFacePipeline(pipeline=pipe), tokenizer=scorer.tokenizer)
