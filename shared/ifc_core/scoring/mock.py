"""`MockScorer`: a scorer with no model, for unit tests of logic (never for claims about labels).

Tokens are runs of non-space characters and runs of spaces, numbered as they are first seen, so
`decode(encode(text)) == text`. The scores are whatever the function you give returns for the
context's text and the output's text; generation answers with `reply(context text)`.

    scorer = MockScorer(lambda context, output: -0.1 if "Zelbrook" in context else -6.0,
                        reply=lambda context: "Zelbrook." if "Zelbrook" in context else "No idea.")
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _checks as checks
from .base import Generation, Message, ScoringRun, check_window

__all__ = ["MockScorer"]

_TOKEN = re.compile(r"\s+|\S+")
LogProbs = Callable[[str, str], "float | Sequence[float] | np.ndarray"]


class MockScorer:
    """A `Scorer` whose per-token log-probabilities come from `logprobs(context, output)`.

    `logprobs` returns one float (the same for every output token) or one per output token; it
    may raise, or return NaN or the wrong number of values, to exercise the fail-closed paths.
    `reply(context)` is the text `generate` produces (default: an empty answer).
    `calls` counts the `logprobs` calls, `contexts` records every scored context's text; `keys`
    and `forgotten` record the run keys of `run` and `forget`.
    """

    def __init__(self, logprobs: LogProbs, *, reply: Callable[[str], str] | None = None,
                 max_context: int = 4096, model_id: str = "mock") -> None:
        if not callable(logprobs):
            raise checks.wrong_type("logprobs", "a function (context, output) -> log-probabilities", logprobs)
        if reply is not None and not callable(reply):
            raise checks.wrong_type("reply", "a function (context) -> text, or None", reply)
        checks.whole(max_context, "max_context", low=2)
        checks.text(model_id, "model_id")
        self.logprobs = logprobs
        self.reply = reply or (lambda context: "")
        self.model_id = model_id
        self.max_context = max_context
        self.hidden_states = None
        self.calls = 0
        self.contexts: list[str] = []
        self.keys: list[str | None] = []  # the run key of every run opened
        self.forgotten: list[str] = []  # every key forget() was called with
        self._vocab: dict[str, int] = {}
        self._words: list[str] = []
        self._lock = threading.Lock()

    def encode(self, text: str) -> tuple[int, ...]:
        ids = []
        with self._lock:
            for word in _TOKEN.findall(text):
                if word not in self._vocab:
                    self._vocab[word] = len(self._words)
                    self._words.append(word)
                ids.append(self._vocab[word])
        return tuple(ids)

    def decode(self, ids: Sequence[int]) -> str:
        with self._lock:
            return "".join(self._words[i] for i in ids)

    def render_chat(self, messages: Sequence[Message]) -> str:
        turns = "".join(f"<{m['role']}>\n{m['content']}\n" for m in messages)
        return turns + "<assistant>\n"

    def describe(self) -> str:
        return "mock scorer (no model)"

    def run(self, output_ids: Sequence[int], *, key: str | None = None) -> ScoringRun:
        with self._lock:
            self.keys.append(key)
        return _MockRun(self, output_ids)

    def forget(self, key: str) -> None:
        """Records `key` in `forgotten` (a mock keeps nothing per run)."""
        with self._lock:
            self.forgotten.append(key)

    def generate(self, context_ids: Sequence[int], max_new_tokens: int = 128) -> Generation:
        check_window(self, context_ids, max_new_tokens)
        context = self.decode(context_ids)
        ids = self.encode(self.reply(context))[:max_new_tokens]
        logprobs = self.values(context, ids) if ids else np.zeros(0)
        return Generation(ids, logprobs, len(ids) + 1, len(context_ids) + len(ids))

    def values(self, context: str, output_ids: Sequence[int]) -> np.ndarray:
        """`logprobs` for one context, broadcast to one value per output token when it is one float."""
        with self._lock:
            self.calls += 1
            self.contexts.append(context)
        got: Any = self.logprobs(context, self.decode(output_ids))
        arr = np.asarray(got, dtype=np.float64)
        return np.full(len(output_ids), float(arr)) if arr.ndim == 0 else arr


class _MockRun(ScoringRun):
    scorer: MockScorer

    def _score(self, contexts: list[tuple[int, ...]]) -> list[np.ndarray]:
        self.passes += 1
        self.tokens += sum(len(c) + len(self.output_ids) for c in contexts)
        return [self.scorer.values(self.scorer.decode(c), self.output_ids) for c in contexts]
