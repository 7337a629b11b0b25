"""`HFScorer`: any local causal LM from `transformers`, in process.

Scoring is exact teacher forcing; the speed comes from work that is shared, never from
approximation (`HFScoringRun`, in hf_run.py): every context reuses the KV cache of the longest
token prefix already prefilled, by the same decision or, for a run key, by the run's earlier
decisions (`RunCache`, in hf_cache.py: bounded by `run_cache_bytes`, least recently used run
evicted first, dropped by `forget(key)`).

It is the one backend with the hidden-state capability (`hidden_states`, for kNN-LM).
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _checks as checks
from .._errors import ConfigurationError
from .base import Generation, Message, check_window
from .hf_cache import RunCache
from .hf_run import HFScoringRun

__all__ = ["HFScorer", "HFScoringRun"]

_EMBEDDED: dict[str, HFScorer] = {}
_EMBEDDED_LOCK = threading.Lock()


_RUN_CACHE_BYTES = 1 << 30  # 1 GiB of KV entries across runs (SmolLM2-135M: 45 KiB a token in float32)


class HFScorer:
    """Scores and generates with one loaded causal LM; safe to share between threads.

    Build it with `HFScorer.load()` (the embedded default model), `HFScorer.load("path")`, or
    `HFScorer(model, tokenizer)` for a model you loaded yourself. `run_cache_bytes` bounds the KV
    caches kept between the decisions of a run (`run(..., key=...)`); 0 keeps none.
    """

    def __init__(self, model: Any, tokenizer: Any, *, model_id: str | None = None,
                 max_batch_tokens: int = 16384, run_cache_bytes: int = _RUN_CACHE_BYTES) -> None:
        if not hasattr(model, "config") or not all(callable(getattr(model, n, None)) for n in ("forward", "parameters")):
            raise checks.wrong_type("model", "a loaded transformers causal LM (or use HFScorer.load(path))", model)
        if not callable(tokenizer) or not callable(getattr(tokenizer, "decode", None)):
            raise checks.wrong_type("tokenizer", "the model's transformers tokenizer", tokenizer)
        checks.text(model_id, "model_id", optional=True)
        checks.whole(max_batch_tokens, "max_batch_tokens")
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id or getattr(model.config, "_name_or_path", "model")
        self.max_context = int(getattr(model.config, "max_position_embeddings", 2048))
        self.max_batch_tokens = max_batch_tokens
        self.device = next(model.parameters()).device
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos = eos if eos is not None else tokenizer.eos_token_id
        self.stop_ids = frozenset(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        self.lock = threading.Lock()  # one forward pass at a time: deterministic and bounded memory
        # transformers 5.x renamed the forward argument `past_key_values` to `cache`.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._hidden: Any = None
        self.run_cache = RunCache(run_cache_bytes)

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, device: str | None = None,
             dtype: str | None = None, **kwargs: Any) -> HFScorer:
        """Load a local model (None: the embedded SmolLM2-135M-Instruct) and wrap it.

        `device`: "cpu", "cuda", "cuda:1", ... (default: CUDA when available); `dtype`: "float32",
        "bfloat16" or "float16" (default: bfloat16 on CUDA, float32 on CPU)."""
        from .._model import check_load_options, load_causal_lm

        check_load_options(model, device, dtype)
        extra = sorted(set(kwargs) - {"max_batch_tokens", "run_cache_bytes"})
        if extra:
            raise ConfigurationError(f"HFScorer.load: unknown option(s) {extra}; it takes device, dtype, "
                                     "max_batch_tokens, run_cache_bytes")

        lm, tokenizer, model_id = load_causal_lm(model, device=device, dtype=dtype)
        return cls(lm, tokenizer, model_id=model_id, **kwargs)

    @classmethod
    def embedded(cls) -> HFScorer:
        """The embedded default model, loaded once per process and shared (thread-safe)."""
        with _EMBEDDED_LOCK:
            if "scorer" not in _EMBEDDED:
                _EMBEDDED["scorer"] = cls.load()
            return _EMBEDDED["scorer"]

    # tokenization -------------------------------------------------------------------------------

    def encode(self, text: str) -> tuple[int, ...]:
        """Token ids of `text` with no special tokens added."""
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens skipped."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def render_chat(self, messages: Sequence[Message]) -> str:
        """The tokenizer's chat template applied to `messages`, assistant turn opened."""
        return str(self.tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                                      add_generation_prompt=True))

    def describe(self) -> str:
        import torch

        dtype = str(self.model.dtype).replace("torch.", "")
        return f"{self.device} ({dtype}, {torch.get_num_threads()} torch threads)"

    # scoring and generation ---------------------------------------------------------------------

    def run(self, output_ids: Sequence[int], *, key: str | None = None) -> HFScoringRun:
        """A scoring run for one fixed output; see `ScoringRun.score`. With `key` (the run the
        output belongs to), it starts from the contexts the run's earlier decisions prefilled and
        keeps its own for the next one."""
        return HFScoringRun(self, output_ids, key)

    def forget(self, key: str) -> None:
        """Drop the KV caches kept for run `key`."""
        self.run_cache.forget(key)

    @property
    def hidden_states(self) -> Any:
        """The hidden-state capability (kNN-LM): `ifc_core.scoring.hf_hidden.HFHiddenStates`."""
        if self._hidden is None:
            from .hf_hidden import HFHiddenStates

            self._hidden = HFHiddenStates(self)
        return self._hidden

    def forward(self, cache: Any = None, **kwargs: Any) -> Any:
        """One forward pass of the model under the scorer's lock (HF backend internals)."""
        import torch

        if cache is not None:
            kwargs[self._cache_kw] = cache
        with self.lock, torch.inference_mode():
            return self.model(**kwargs)

    def cache_of(self, out: Any) -> Any:
        """The KV cache a forward pass returned."""
        return out[self._cache_kw] if self._cache_kw in out else out.past_key_values

    def generate(self, context_ids: Sequence[int], max_new_tokens: int = 128) -> Generation:
        """Greedy decoding from `context_ids`; stops at the model's stop token."""
        import torch

        check_window(self, context_ids, max_new_tokens)
        ids: list[int] = []
        logprobs: list[float] = []
        inp = torch.tensor([list(context_ids)], device=self.device)
        cache, passes, tokens = None, 0, 0
        for _ in range(max_new_tokens):
            out = self.forward(input_ids=inp, cache=cache, use_cache=True, logits_to_keep=1)
            passes, tokens = passes + 1, tokens + inp.shape[1]
            cache = self.cache_of(out)
            lp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            tok = int(torch.argmax(lp))
            if tok in self.stop_ids:
                break
            ids.append(tok)
            logprobs.append(float(lp[tok]))
            inp = torch.tensor([[tok]], device=self.device)
        return Generation(tuple(ids), np.asarray(logprobs, dtype=np.float64), passes, tokens, cache)
