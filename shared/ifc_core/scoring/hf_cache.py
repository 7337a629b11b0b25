"""The HF scorer's KV caches: prefixes it already computed, reused while they match exactly.

A `KVEntry` is the key/value cache of one token sequence (a context the scorer prefilled). A
scoring run looks up, for each context it must score, the entry with the longest common token
prefix and computes only the rest; that is exact, because a causal model's cache of a prefix
does not depend on what follows it.

`RunCache` keeps entries across the decisions of one run (an agent's steps, keyed as the tracker
keys runs): the next decision of the run starts from the contexts the last one prefilled, so it
pays only for the tokens added since. Bounded by a byte budget: the least recently used run is
evicted first, and within a run its oldest entries. `forget(key)` drops a run (the tracker calls
it through the propagator when it finishes or evicts the run).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _checks as checks

__all__ = ["KVEntry", "RunCache", "common_prefix"]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n], dtype=np.int64)
    y = np.asarray(b[:n], dtype=np.int64)
    diff = np.flatnonzero(x != y)
    return int(diff[0]) if diff.size else n


@dataclass(frozen=True, eq=False)
class KVEntry:
    """The KV cache of `tokens`: per layer (keys, values), each [1, heads, len(tokens), dim].

    Never modified once made (every use slices it into a fresh cache), so threads may share it.
    """

    tokens: tuple[int, ...]
    layers: tuple[tuple[Any, Any], ...]
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:  # what it holds: a slice keeps its whole tensor alive
        size = sum(k.untyped_storage().nbytes() + v.untyped_storage().nbytes() for k, v in self.layers)
        object.__setattr__(self, "nbytes", int(size))

    def __len__(self) -> int:
        return len(self.tokens)


class RunCache:
    """Per-run KV entries under one byte budget (`max_bytes`; 0 keeps nothing).

    `entries(key)` is what a new decision of run `key` may reuse; `put(key, entries)` keeps what a
    decision computed (at most `max_entries` per run, newest kept; an entry that is a prefix of
    another is dropped, the longer one serves every lookup it would). Thread-safe.
    """

    def __init__(self, max_bytes: int, *, max_entries: int = 8) -> None:
        self.max_bytes = checks.whole(max_bytes, "run_cache_bytes", low=0)  # 0 turns the run cache off
        self.max_entries = checks.whole(max_entries, "max_entries")
        self._runs: OrderedDict[str, list[KVEntry]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.evicted = 0  # entries dropped for the budget (not by forget)
        self.peak_bytes = 0

    @property
    def enabled(self) -> bool:
        """Whether anything is kept between decisions (a budget above 0)."""
        return self.max_bytes > 0

    def entries(self, key: str) -> list[KVEntry]:
        """The entries held for run `key`, newest first (marks the run recently used)."""
        with self._lock:
            held = self._runs.get(key)
            if held is None:
                return []
            self._runs.move_to_end(key)
            return list(reversed(held))

    def put(self, key: str, entries: Sequence[KVEntry]) -> None:
        """Keep `entries` (oldest first) as run `key`'s newest; evict past the budget."""
        if not self.enabled or not entries:
            return
        with self._lock:
            previous = self._runs.pop(key, [])
            self._bytes -= sum(e.nbytes for e in previous)
            held = [e for e in previous if all(e is not n for n in entries)]
            merged = held + [e for e in entries if e.nbytes <= self.max_bytes]
            kept: list[KVEntry] = []
            for i, e in enumerate(merged):  # drop an entry another one extends (newer wins ties)
                if not any(len(o) >= len(e) and o.tokens[: len(e)] == e.tokens
                           for j, o in enumerate(merged) if j != i and (len(o) > len(e) or j > i)):
                    kept.append(e)
            kept = kept[-self.max_entries:]
            self._bytes += sum(e.nbytes for e in kept)
            if kept:
                self._runs[key] = kept
            while self._bytes > self.max_bytes and self._runs:
                oldest = next(iter(self._runs))
                run = self._runs[oldest]
                self._bytes -= run.pop(0).nbytes
                self.evicted += 1
                if not run:
                    del self._runs[oldest]
            self.peak_bytes = max(self.peak_bytes, self._bytes)

    def forget(self, key: str) -> None:
        """Drop everything held for run `key`."""
        with self._lock:
            run = self._runs.pop(key, None)
            if run:
                self._bytes -= sum(e.nbytes for e in run)

    def clear(self) -> None:
        """Drop every run's entries (the counters stay)."""
        with self._lock:
            self._runs.clear()
            self._bytes = 0

    def stats(self) -> dict[str, int]:
        """Bytes held now and at peak, runs and entries held, entries evicted for the budget."""
        with self._lock:
            return {"bytes": self._bytes, "peak_bytes": self.peak_bytes, "runs": len(self._runs),
                    "entries": sum(len(r) for r in self._runs.values()), "evicted": self.evicted,
                    "max_bytes": self.max_bytes}
