"""The scorer seam: what every propagator, the eval harness and the adapters may ask of a model.

A `Scorer` (the protocol) tokenizes, renders the chat template, scores one fixed output under
many contexts (`run(output_ids).score(contexts)`) and generates greedily. Backends: `HFScorer`
(a local `transformers` model, in process), `VLLMScorer` (a vLLM server over HTTP), `MockScorer`
(scores from a function, for unit tests). Anything else is a backend detail behind it: the HF
scorer's KV-cache reuse, the served scorer's batching by the engine.

`ScoringRun` is the shared half of every backend's run: it checks the inputs, and checks every
result before a propagator sees it (one array per context, one finite value per output token),
so a backend can never hand the label search a partial or poisoned score.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .. import _checks as checks
from .._errors import ScoringError

__all__ = ["Scorer", "ScoringRun", "Generation", "HiddenStates", "open_run", "forget_run"]

Message = Mapping[str, str]


@dataclass(frozen=True)
class Generation:
    """A greedy generation: token ids (stop token excluded) and each token's log-probability.

    `passes` and `tokens` count the model work it took, for the decision record.
    """

    ids: tuple[int, ...]
    logprobs: np.ndarray
    passes: int
    tokens: int
    _cache: Any = None  # backend state that can seed a ScoringRun (the HF scorer's KV cache)


@runtime_checkable
class HiddenStates(Protocol):
    """The optional capability of a scorer that exposes the model's final hidden states (the
    output head's input), which the kNN-LM propagator needs. `scorer.hidden_states` is None
    when a backend does not have it (a served model)."""

    hidden_size: int
    device: Any  # where the returned tensors live
    stop_ids: frozenset[int]  # tokens that end a generation

    def states(self, sequences: Sequence[Sequence[int]]) -> list[Any]:
        """Final hidden state at every position of each sequence (float32 tensors, [len, dim])."""

    def answer(self, context_ids: Sequence[int], output_ids: Sequence[int]) -> tuple[Any, np.ndarray]:
        """One pass over context + output: hidden states at the positions that predict each output
        token ([len(output), dim]) and those tokens' log-probabilities."""

    def stepper(self, context_ids: Sequence[int], max_new_tokens: int) -> Any:
        """Incremental decoding: `step()` gives (hidden [1, dim], next-token probabilities as a
        float64 array); `feed(token)` appends a token. Counts `passes` and `tokens`."""


@runtime_checkable
class Scorer(Protocol):
    """What a propagator needs from a model. Implementations must be safe to share between threads."""

    model_id: str

    @property
    def max_context(self) -> int:
        """The longest context + output, in tokens, the model accepts."""

    @property
    def hidden_states(self) -> HiddenStates | None:
        """The hidden-state capability (kNN-LM), or None."""

    def encode(self, text: str) -> tuple[int, ...]:
        """Token ids of `text`, no special tokens added."""

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids, special tokens skipped."""

    def render_chat(self, messages: Sequence[Message]) -> str:
        """The chat template applied to `messages`, with the assistant turn opened, as text."""

    def run(self, output_ids: Sequence[int], *, key: str | None = None) -> ScoringRun:
        """A scoring run for one fixed output; see `ScoringRun.score`. `key` names the run (an
        agent's conversation) the output belongs to: a backend may keep state per key that makes
        the run's next decisions cheaper, never different (the HF scorer's KV caches)."""

    def forget(self, key: str) -> None:
        """Drop whatever is kept for run `key` (the tracker calls it when a run ends)."""

    def generate(self, context_ids: Sequence[int], max_new_tokens: int = 128) -> Generation:
        """Greedy decoding from `context_ids`; stops at the model's stop token."""

    def describe(self) -> str:
        """Where and how it runs, for reports (device and precision, or the server)."""


class ScoringRun(ABC):
    """Scores one fixed output y under many contexts: per-token log p(y_t | context, y_<t).

    Counts the model passes and tokens it cost (`passes`, `tokens`) for the decision record.
    Backends implement `_score`; `score` checks what goes in and what comes out.
    """

    def __init__(self, scorer: Scorer, output_ids: Sequence[int]) -> None:
        self.output_ids = tuple(int(t) for t in output_ids)
        if not self.output_ids:
            raise ScoringError("the output is empty; there is nothing to score")
        self.scorer = scorer
        self.passes = 0
        self.tokens = 0

    def seed(self, context_ids: Sequence[int], generation: Generation) -> np.ndarray:
        """The scores of this run's output after `context_ids` when it is `generation` of that
        context: its own log-probabilities, already computed. Backends may keep more (a cache)."""
        if generation.ids != self.output_ids:
            raise ScoringError("seed() needs the generation of this run's own output")
        return self._checked([generation.logprobs], 1)[0]

    def score(self, contexts: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Per-token log-probabilities of the output after each context (float64 arrays).

        Raises `ScoringError` for a context that does not fit the model window, and for any
        result that is missing, of the wrong length or not finite: never a partial score.
        """
        if not contexts:
            return []
        window = self.scorer.max_context
        y = self.output_ids
        for c in contexts:
            if len(c) + len(y) > window:
                raise ScoringError(f"context of {len(c)} tokens plus the {len(y)}-token output exceeds "
                                   f"the model window of {window}")
        return self._checked(self._score([tuple(int(t) for t in c) for c in contexts]), len(contexts))

    def _checked(self, scores: Sequence[Any], expected: int) -> list[np.ndarray]:
        if len(scores) != expected:
            raise ScoringError(f"the scorer returned {len(scores)} results for {expected} contexts")
        out = []
        for s in scores:
            arr = np.asarray(s, dtype=np.float64)
            if arr.shape != (len(self.output_ids),):
                raise ScoringError(f"the scorer returned {arr.shape} scores for a {len(self.output_ids)}-token output")
            if not np.all(np.isfinite(arr)):
                raise ScoringError("non-finite score from the model")
            out.append(arr)
        return out

    @abstractmethod
    def _score(self, contexts: list[tuple[int, ...]]) -> Sequence[Any]:
        """One array of per-token log-probabilities per context, in order."""


def open_run(scorer: Scorer, output_ids: Sequence[int], key: str | None = None) -> ScoringRun:
    """`scorer.run(output_ids, key=key)`; a scorer written before run keys (no `forget`) gets no key."""
    if key is not None and callable(getattr(scorer, "forget", None)):
        return scorer.run(output_ids, key=key)
    return scorer.run(output_ids)


def forget_run(scorer: Scorer | None, key: str) -> None:
    """`scorer.forget(key)` when the scorer keeps anything per run."""
    forget = getattr(scorer, "forget", None)
    if callable(forget):
        forget(key)


def check_window(scorer: Scorer, context_ids: Sequence[int], max_new_tokens: int) -> None:
    """Refuse a generation that cannot fit the model window (or asks for no tokens at all)."""
    checks.whole(max_new_tokens, "max_new_tokens")
    if len(context_ids) + max_new_tokens > scorer.max_context:
        raise ScoringError(
            f"prompt of {len(context_ids)} tokens plus {max_new_tokens} new tokens exceeds the "
            f"model window of {scorer.max_context}; retrieve fewer or shorter documents"
        )
