"""The influence scorer: log-likelihoods of a fixed output under many candidate contexts.

`HFScorer` wraps any local causal LM from `transformers`. Scoring is exact teacher forcing; the
speed comes from work that is shared, never from approximation:

- a `ScoringRun` scores one output; its first (longest) context is prefilled once and its KV cache
  kept, and every later context reuses the cache up to their longest common token prefix;
- all contexts of one call go through the model in padded batches: each row sees the shared cache
  up to its own common prefix (the rest is masked), then its own remaining tokens, left-padded so
  that the output positions line up and ``logits_to_keep`` keeps only those;
- log-softmax is taken in float32 whatever the model's dtype.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._errors import ScoringError

__all__ = ["HFScorer", "ScoringRun", "Generation"]

_EMBEDDED: dict[str, HFScorer] = {}
_EMBEDDED_LOCK = threading.Lock()


@dataclass(frozen=True)
class Generation:
    """A greedy generation: token ids (stop token excluded) and each token's log-probability."""

    ids: tuple[int, ...]
    logprobs: np.ndarray
    passes: int
    tokens: int
    _cache: Any = None  # KV cache of context + ids[:-1], to seed a ScoringRun


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
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id or getattr(model.config, "_name_or_path", "model")
        self.max_context = int(getattr(model.config, "max_position_embeddings", 2048))
        self.max_batch_tokens = max_batch_tokens
        self.device = next(model.parameters()).device
        eos = model.generation_config.eos_token_id if model.generation_config else None
        eos = eos if eos is not None else tokenizer.eos_token_id
        self.stop_ids = frozenset(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        self._lock = threading.Lock()  # one forward pass at a time: deterministic and bounded memory
        # transformers 5.x renamed the forward argument `past_key_values` to `cache`.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, device: str | None = None,
             dtype: str | None = None, **kwargs: Any) -> HFScorer:
        """Load a local model (None: the embedded SmolLM2-135M-Instruct) and wrap it."""
        from ._model import load_causal_lm

        lm, tokenizer, model_id = load_causal_lm(model, device=device, dtype=dtype)
        return cls(lm, tokenizer, model_id=model_id, **kwargs)

    @classmethod
    def embedded(cls) -> HFScorer:
        """The embedded default model, loaded once per process and shared (thread-safe)."""
        with _EMBEDDED_LOCK:
            if "scorer" not in _EMBEDDED:
                _EMBEDDED["scorer"] = cls.load()
            return _EMBEDDED["scorer"]

    def encode(self, text: str) -> tuple[int, ...]:
        """Token ids of `text` with no special tokens added."""
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def run(self, output_ids: Sequence[int]) -> ScoringRun:
        """A scoring run for one fixed output; see `ScoringRun.score`."""
        return ScoringRun(self, tuple(output_ids))

    def _forward(self, cache: Any = None, **kwargs: Any) -> Any:
        import torch

        if cache is not None:
            kwargs[self._cache_kw] = cache
        with self._lock, torch.inference_mode():
            return self.model(**kwargs)

    def _cache_of(self, out: Any) -> Any:
        return out[self._cache_kw] if self._cache_kw in out else out.past_key_values

    def generate(self, context_ids: Sequence[int], max_new_tokens: int = 128) -> Generation:
        """Greedy decoding from `context_ids`; stops at the model's stop token."""
        import torch

        if len(context_ids) + max_new_tokens > self.max_context:
            raise ScoringError(
                f"prompt of {len(context_ids)} tokens plus {max_new_tokens} new tokens exceeds the "
                f"model window of {self.max_context}; retrieve fewer or shorter documents"
            )
        ids: list[int] = []
        logprobs: list[float] = []
        inp = torch.tensor([list(context_ids)], device=self.device)
        cache, passes, tokens = None, 0, 0
        for _ in range(max_new_tokens):
            out = self._forward(input_ids=inp, cache=cache, use_cache=True, logits_to_keep=1)
            passes, tokens = passes + 1, tokens + inp.shape[1]
            cache = self._cache_of(out)
            lp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            tok = int(torch.argmax(lp))
            if tok in self.stop_ids:
                break
            ids.append(tok)
            logprobs.append(float(lp[tok]))
            inp = torch.tensor([[tok]], device=self.device)
        return Generation(tuple(ids), np.asarray(logprobs, dtype=np.float64), passes, tokens, cache)


class ScoringRun:
    """Scores one fixed output y under many contexts: per-token log p(y_t | context, y_<t).

    Counts the model passes and tokens it processed (`passes`, `tokens`) for the decision record.
    """

    def __init__(self, scorer: HFScorer, output_ids: tuple[int, ...]) -> None:
        if not output_ids:
            raise ScoringError("the output is empty; there is nothing to score")
        self.scorer = scorer
        self.output_ids = output_ids
        self.passes = 0
        self.tokens = 0
        self._base: tuple[int, ...] | None = None  # context + y[:-1] held in _cache
        self._cache: Any = None

    def seed(self, context_ids: Sequence[int], generation: Generation) -> np.ndarray:
        """Reuse a generation's KV cache as the shared prefix; returns its (root) scores."""
        if generation.ids != self.output_ids or generation._cache is None:
            raise ScoringError("seed() needs the generation of this run's own output")
        self._base = tuple(context_ids) + self.output_ids[:-1]
        self._cache = generation._cache
        return generation.logprobs

    def score(self, contexts: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Per-token log-probabilities of the output after each context, in float64 arrays."""
        if not contexts:
            return []
        y = self.output_ids
        seqs = [tuple(c) + y[:-1] for c in contexts]
        for c in contexts:
            if len(c) + len(y) > self.scorer.max_context:
                raise ScoringError(
                    f"context of {len(c)} tokens plus the {len(y)}-token output exceeds the model "
                    f"window of {self.scorer.max_context}"
                )
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

        out = self.scorer._forward(
            input_ids=torch.tensor([seq], device=self.scorer.device),
            use_cache=True,
            logits_to_keep=len(self.output_ids),
        )
        self.passes, self.tokens = self.passes + 1, self.tokens + len(seq)
        self._base, self._cache = seq, self.scorer._cache_of(out)
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
        out = self.scorer._forward(
            input_ids=input_ids, attention_mask=mask, position_ids=positions,
            cache=cache, use_cache=cache is not None, logits_to_keep=len(self.output_ids),
        )
        self.passes, self.tokens = self.passes + 1, self.tokens + sum(len(r) for r in rests)
        scores = self._logprobs(out.logits)
        return {i: scores[row] for row, i in enumerate(rows)}
