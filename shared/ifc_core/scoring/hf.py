"""`HFScorer`: any local causal LM from `transformers`, in process.

Scoring is exact teacher forcing; the speed comes from work that is shared, never from
approximation:

- a run scores one output; its first (longest) context is prefilled once and its KV cache kept,
  and every later context reuses the cache up to their longest common token prefix;
- all contexts of one call go through the model in padded batches: each row sees the shared cache
  up to its own common prefix (the rest is masked), then its own remaining tokens, left-padded so
  that the output positions line up and ``logits_to_keep`` keeps only those;
- log-softmax is taken in float32 whatever the model's dtype.

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
from .._errors import ConfigurationError, ScoringError
from .base import Generation, Message, ScoringRun, check_window

__all__ = ["HFScorer", "HFScoringRun"]

_EMBEDDED: dict[str, HFScorer] = {}
_EMBEDDED_LOCK = threading.Lock()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class HFScorer:
    """Scores and generates with one loaded causal LM; safe to share between threads.

    Build it with `HFScorer.load()` (the embedded default model), `HFScorer.load("path")`, or
    `HFScorer(model, tokenizer)` for a model you loaded yourself.
    """

    def __init__(self, model: Any, tokenizer: Any, *, model_id: str | None = None,
                 max_batch_tokens: int = 16384) -> None:
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

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, device: str | None = None,
             dtype: str | None = None, **kwargs: Any) -> HFScorer:
        """Load a local model (None: the embedded SmolLM2-135M-Instruct) and wrap it.

        `device`: "cpu", "cuda", "cuda:1", ... (default: CUDA when available); `dtype`: "float32",
        "bfloat16" or "float16" (default: bfloat16 on CUDA, float32 on CPU)."""
        from .._model import check_load_options, load_causal_lm

        check_load_options(model, device, dtype)
        extra = sorted(set(kwargs) - {"max_batch_tokens"})
        if extra:
            raise ConfigurationError(f"HFScorer.load: unknown option(s) {extra}; it takes device, dtype, max_batch_tokens")

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

    def run(self, output_ids: Sequence[int]) -> HFScoringRun:
        """A scoring run for one fixed output; see `ScoringRun.score`."""
        return HFScoringRun(self, output_ids)

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


class HFScoringRun(ScoringRun):
    """A scoring run that keeps the KV cache of its longest context and reuses shared prefixes."""

    scorer: HFScorer

    def __init__(self, scorer: HFScorer, output_ids: Sequence[int]) -> None:
        super().__init__(scorer, output_ids)
        self._base: tuple[int, ...] | None = None  # context + y[:-1] held in _cache
        self._cache: Any = None

    def seed(self, context_ids: Sequence[int], generation: Generation) -> np.ndarray:
        """Reuse a generation's KV cache as the shared prefix; returns its (root) scores."""
        scores = super().seed(context_ids, generation)
        if generation._cache is None:
            raise ScoringError("seed() needs a generation of this scorer (with its KV cache)")
        self._base = tuple(context_ids) + self.output_ids[:-1]
        self._cache = generation._cache
        return scores

    def _score(self, contexts: list[tuple[int, ...]]) -> list[np.ndarray]:
        y = self.output_ids
        seqs = [c + y[:-1] for c in contexts]
        results: dict[int, np.ndarray] = {}
        todo = list(range(len(seqs)))
        if self._base is None:
            first = max(todo, key=lambda i: len(seqs[i]))
            results[first] = self._prefill(seqs[first])
            todo.remove(first)
        assert self._base is not None
        reuse = {i: min(_common_prefix(seqs[i], self._base), len(contexts[i]) - 1) for i in todo}
        todo.sort(key=lambda i: len(seqs[i]) - reuse[i])
        batch: list[int] = []
        real = 0
        for i in todo:  # ascending remainder length: the newest row sets the padded width
            rest = len(seqs[i]) - reuse[i]
            padded = rest * (len(batch) + 1)
            # a new batch when this one would be too big, or mostly padding (>25% waste)
            if batch and (padded > self.scorer.max_batch_tokens or padded > 1.25 * (real + rest)):
                results.update(self._batch(batch, seqs, reuse))
                batch, real = [], 0
            batch.append(i)
            real += rest
        if batch:
            results.update(self._batch(batch, seqs, reuse))
        return [results[i] for i in range(len(seqs))]

    def _logprobs(self, logits: Any) -> np.ndarray:
        import torch

        y = torch.tensor(self.output_ids, device=logits.device)
        lp = torch.log_softmax(logits.float(), dim=-1)
        picked = lp.gather(-1, y.expand(lp.shape[0], -1).unsqueeze(-1)).squeeze(-1)
        return picked.double().cpu().numpy()

    def _prefill(self, seq: tuple[int, ...]) -> np.ndarray:
        import torch

        out = self.scorer.forward(
            input_ids=torch.tensor([seq], device=self.scorer.device),
            use_cache=True,
            logits_to_keep=len(self.output_ids),
        )
        self.passes, self.tokens = self.passes + 1, self.tokens + len(seq)
        self._base, self._cache = seq, self.scorer.cache_of(out)
        return self._logprobs(out.logits)[0]

    def _batch(self, rows: list[int], seqs: list[tuple[int, ...]], reuse: dict[int, int]) -> dict[int, np.ndarray]:
        import torch
        from transformers import DynamicCache

        dev = self.scorer.device
        shared = max(reuse[i] for i in rows)
        rests = [seqs[i][reuse[i]:] for i in rows]
        width = max(len(r) for r in rests)
        n = len(rows)
        input_ids = torch.zeros((n, width), dtype=torch.long, device=dev)
        positions = torch.zeros((n, width), dtype=torch.long, device=dev)
        mask = torch.zeros((n, shared + width), dtype=torch.long, device=dev)
        for row, (i, rest) in enumerate(zip(rows, rests)):
            pad = width - len(rest)
            input_ids[row, pad:] = torch.tensor(rest, device=dev)
            positions[row, pad:] = torch.arange(reuse[i], reuse[i] + len(rest), device=dev)
            mask[row, : reuse[i]] = 1  # this row's own prefix in the shared cache; the rest is masked
            mask[row, shared + pad:] = 1
        cache = None
        if shared:
            cache = DynamicCache(
                [(layer.keys[:, :, :shared].expand(n, -1, -1, -1).contiguous(),
                  layer.values[:, :, :shared].expand(n, -1, -1, -1).contiguous())
                 for layer in self._cache.layers]
            )
        out = self.scorer.forward(
            input_ids=input_ids, attention_mask=mask, position_ids=positions,
            cache=cache, use_cache=cache is not None, logits_to_keep=len(self.output_ids),
        )
        self.passes, self.tokens = self.passes + 1, self.tokens + sum(len(r) for r in rests)
        scores = self._logprobs(out.logits)
        return {i: scores[row] for row, i in enumerate(rows)}
