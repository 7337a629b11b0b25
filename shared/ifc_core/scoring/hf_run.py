"""`HFScoringRun`: the HF scorer's teacher-forced scoring of one output under many contexts.

Exact, and as cheap as shared work makes it:

- every context reuses the KV cache of the longest token prefix it shares with a context already
  prefilled (`KVEntry`): by this run, or by an earlier decision of the same run (`key`; the
  scorer's `RunCache`), so an agent's next step pays only for the tokens added since the last;
- when no cached prefix serves a call's contexts, its longest one is prefilled first and the
  others reuse it;
- the contexts that share one cached prefix go through the model in padded batches: each row sees
  the cached prefix up to its own common prefix (the rest is masked), then its own remaining
  tokens, left-padded so that the output positions line up and ``logits_to_keep`` keeps only those;
- log-softmax is taken in float32 whatever the model's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import ScoringError
from .base import Generation, ScoringRun
from .hf_cache import KVEntry, common_prefix

if TYPE_CHECKING:
    from .hf import HFScorer

__all__ = ["HFScoringRun"]

_LEAD_GAIN = 16  # tokens the other contexts must gain before the lead context is prefilled on its own


class HFScoringRun(ScoringRun):
    """A scoring run that reuses cached prefixes (its own, and its run's when `key` is given)."""

    scorer: HFScorer

    def __init__(self, scorer: HFScorer, output_ids: Sequence[int], key: str | None = None) -> None:
        super().__init__(scorer, output_ids)
        self.key = key
        cache = scorer.run_cache
        self._cross = key is not None and cache.enabled
        self._held: list[KVEntry] = cache.entries(key) if self._cross and key is not None else []
        self._new: list[KVEntry] = []  # made by this run, oldest first
        self.reused = 0  # context tokens served from cached prefixes

    # cached prefixes ------------------------------------------------------------------------

    def _keep(self, entries: list[KVEntry]) -> None:
        if not entries:
            return
        self._new = (self._new + entries)[-self.scorer.run_cache.max_entries:]
        if self._cross and self.key is not None:
            self.scorer.run_cache.put(self.key, entries)

    def _lookup(self, seq: tuple[int, ...], context_len: int) -> tuple[KVEntry | None, int]:
        """The cached prefix that serves `seq` best, and how many tokens of it to reuse (never the
        context's last token, whose logits predict the output's first)."""
        best: KVEntry | None = None
        reuse = 0
        for entry in [*reversed(self._new), *self._held]:
            n = min(common_prefix(entry.tokens, seq), context_len - 1)
            if n > reuse:
                best, reuse = entry, n
        return best, reuse

    def seed(self, context_ids: Sequence[int], generation: Generation) -> np.ndarray:
        """Reuse a generation's KV cache as a cached prefix; returns its (root) scores."""
        scores = super().seed(context_ids, generation)
        if generation._cache is None:
            raise ScoringError("seed() needs a generation of this scorer (with its KV cache)")
        n = len(context_ids)
        layers = tuple((layer.keys[:, :, :n].clone(), layer.values[:, :, :n].clone())
                       for layer in generation._cache.layers)
        self._keep([KVEntry(tuple(int(t) for t in context_ids), layers)])
        return scores

    # scoring ----------------------------------------------------------------------------------

    def _score(self, contexts: list[tuple[int, ...]]) -> list[np.ndarray]:
        y = self.output_ids
        seqs = [c + y[:-1] for c in contexts]
        results: dict[int, np.ndarray] = {}
        todo = list(range(len(seqs)))
        while todo:
            plan = {i: self._lookup(seqs[i], len(contexts[i])) for i in todo}
            if len(todo) > 1:
                # the context with the most left to compute goes first when the others gain from it
                lead = max(todo, key=lambda i: (len(seqs[i]) - plan[i][1], len(seqs[i])))
                gain = sum(max(0, min(common_prefix(contexts[lead], seqs[i]), len(contexts[i]) - 1) - plan[i][1])
                           for i in todo if i != lead)
                if gain >= _LEAD_GAIN:
                    results.update(self._group([lead], seqs, contexts, plan, keep_all=True))
                    todo.remove(lead)
                    continue
            keep_all = len(todo) <= self.scorer.run_cache.max_entries
            for entry in dict.fromkeys(plan[i][0] for i in todo):
                rows = [i for i in todo if plan[i][0] is entry]
                results.update(self._group(rows, seqs, contexts, plan, keep_all=keep_all))
            todo = []
        return [results[i] for i in range(len(seqs))]

    def _group(self, rows: list[int], seqs: list[tuple[int, ...]], contexts: list[tuple[int, ...]],
               plan: dict[int, tuple[KVEntry | None, int]], *, keep_all: bool) -> dict[int, np.ndarray]:
        """Rows that share one cached prefix, in batches that are neither too big nor mostly padding."""
        rows = sorted(rows, key=lambda i: len(seqs[i]) - plan[i][1])
        results: dict[int, np.ndarray] = {}
        batch: list[int] = []
        real = 0
        for i in rows:  # ascending remainder length: the newest row sets the padded width
            rest = len(seqs[i]) - plan[i][1]
            padded = rest * (len(batch) + 1)
            # a new batch when this one would be too big, or mostly padding (>25% waste)
            if batch and (padded > self.scorer.max_batch_tokens or padded > 1.25 * (real + rest)):
                results.update(self._batch(batch, seqs, contexts, plan, keep_all))
                batch, real = [], 0
            batch.append(i)
            real += rest
        if batch:
            results.update(self._batch(batch, seqs, contexts, plan, keep_all))
        return results

    def _logprobs(self, logits: Any) -> np.ndarray:
        import torch

        y = torch.tensor(self.output_ids, device=logits.device)
        lp = torch.log_softmax(logits.float(), dim=-1)
        picked = lp.gather(-1, y.expand(lp.shape[0], -1).unsqueeze(-1)).squeeze(-1)
        return picked.double().cpu().numpy()

    def _batch(self, rows: list[int], seqs: list[tuple[int, ...]], contexts: list[tuple[int, ...]],
               plan: dict[int, tuple[KVEntry | None, int]], keep_all: bool) -> dict[int, np.ndarray]:
        import torch
        from transformers import DynamicCache

        dev = self.scorer.device
        entry = plan[rows[0]][0]
        reuse = {i: plan[i][1] for i in rows}
        shared = max(reuse.values())
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
            assert entry is not None
            cache = DynamicCache([(k[:, :, :shared].expand(n, -1, -1, -1), v[:, :, :shared].expand(n, -1, -1, -1))
                                  for k, v in entry.layers])
        # one row that sees all of the cached prefix needs no mask: the causal fast path (and GQA
        # without repeating the cached keys) does the same computation
        out = self.scorer.forward(
            input_ids=input_ids, attention_mask=None if n == 1 else mask, position_ids=positions,
            cache=cache, use_cache=True, logits_to_keep=len(self.output_ids),
        )
        self.passes, self.tokens = self.passes + 1, self.tokens + sum(len(r) for r in rests)
        self.reused += sum(reuse.values())
        if keep_all or n == 1:
            self._keep([self._entry(out, row, contexts[i], entry, reuse[i], shared + width - len(rests[row]))
                        for row, i in enumerate(rows)])
        scores = self._logprobs(out.logits)
        return {i: scores[row] for row, i in enumerate(rows)}

    def _entry(self, out: Any, row: int, context: tuple[int, ...], entry: KVEntry | None, reuse: int,
               start: int) -> KVEntry:
        """The KV cache of `context` alone, cut out of a batch: the cached prefix it reused, then
        its own computed positions (from `start` in the batch's cache) up to the context's end."""
        import torch

        own = len(context) - reuse
        layers = []
        for i, layer in enumerate(self.scorer.cache_of(out).layers):
            if start == reuse and layer.keys.shape[0] == 1:  # one row, no padding: the batch's cache is its own
                layers.append((layer.keys[:, :, :len(context)], layer.values[:, :, :len(context)]))
                continue
            k = layer.keys[row:row + 1, :, start:start + own]
            v = layer.values[row:row + 1, :, start:start + own]
            if reuse:
                assert entry is not None
                k = torch.cat([entry.layers[i][0][:, :, :reuse], k], dim=2)
                v = torch.cat([entry.layers[i][1][:, :, :reuse], v], dim=2)
            else:
                k, v = k.clone(), v.clone()
            layers.append((k, v))
        return KVEntry(context, tuple(layers))
