"""`MemoScorer`: a wrapper that scores each (context, output) pair once, for any scorer.

The eval harness wraps its scorer in one for the estimate stage and the λ sweep, which re-scores
the same contexts under other tolerances: those cost nothing the second time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _checks as checks
from .base import Generation, HiddenStates, Message, Scorer, ScoringRun, forget_run, open_run

__all__ = ["MemoScorer"]


class MemoScorer:
    """`inner`, with every scored (context, output) pair remembered; everything else delegated."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = checks.scorer(inner, "inner")
        self.model_id = inner.model_id
        self.memo: dict[tuple[tuple[int, ...], tuple[int, ...]], np.ndarray] = {}
        self.lock = threading.Lock()

    @property
    def max_context(self) -> int:
        return self.inner.max_context

    @property
    def hidden_states(self) -> HiddenStates | None:
        return self.inner.hidden_states

    def encode(self, text: str) -> tuple[int, ...]:
        return self.inner.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.inner.decode(ids)

    def render_chat(self, messages: Sequence[Message]) -> str:
        return self.inner.render_chat(messages)

    def describe(self) -> str:
        return self.inner.describe()

    def generate(self, context_ids: Sequence[int], max_new_tokens: int = 128) -> Generation:
        return self.inner.generate(context_ids, max_new_tokens)

    def run(self, output_ids: Sequence[int], *, key: str | None = None) -> ScoringRun:
        return _MemoRun(self, output_ids, key)

    def forget(self, key: str) -> None:
        forget_run(self.inner, key)


class _MemoRun(ScoringRun):
    scorer: MemoScorer

    def __init__(self, scorer: MemoScorer, output_ids: Sequence[int], key: str | None = None) -> None:
        super().__init__(scorer, output_ids)
        self._inner: ScoringRun | None = None
        self._key = key

    def seed(self, context_ids: Sequence[int], generation: Generation) -> np.ndarray:
        return self._run().seed(context_ids, generation)

    def _run(self) -> ScoringRun:
        if self._inner is None:
            self._inner = open_run(self.scorer.inner, self.output_ids, self._key)
        return self._inner

    def _score(self, contexts: list[tuple[int, ...]]) -> list[Any]:
        keys = [(c, self.output_ids) for c in contexts]
        memo, lock = self.scorer.memo, self.scorer.lock
        with lock:
            todo = list(dict.fromkeys(c for c, k in zip(contexts, keys) if k not in memo))
        if todo:
            run = self._run()
            before = run.passes, run.tokens
            scored = run.score(todo)
            self.passes += run.passes - before[0]
            self.tokens += run.tokens - before[1]
            with lock:
                memo.update({(c, self.output_ids): s for c, s in zip(todo, scored)})
        with lock:
            return [memo[k] for k in keys]
