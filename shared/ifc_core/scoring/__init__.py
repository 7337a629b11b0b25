"""The scorer seam (`Scorer`) and its backends.

- `HFScorer`: a local `transformers` model in process (KV-cache reuse, hidden states for kNN-LM);
- `VLLMScorer`: a vLLM server over its OpenAI-compatible HTTP API;
- `MockScorer`: scores from a function, for unit tests of logic;
- `MemoScorer`: any scorer, each (context, output) pair scored once (the eval harness).
"""

from .base import Generation, HiddenStates, Scorer, ScoringRun
from .hf import HFScorer
from .memo import MemoScorer
from .mock import MockScorer
from .vllm import VLLMScorer

__all__ = ["Generation", "HFScorer", "HiddenStates", "MemoScorer", "MockScorer", "Scorer", "ScoringRun", "VLLMScorer"]
