"""The hidden-state capability of `HFScorer`: final hidden states for the kNN-LM propagator.

"Final hidden state" means the output head's input. That is checked once per model against the
logits at the last position: a model whose last hidden state is not the head's input (some return
it before the final norm) cannot be a kNN-LM, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import ScoringError
from .base import check_window

if TYPE_CHECKING:
    from .hf import HFScorer

__all__ = ["HFHiddenStates"]

_CHECKED: set[int] = set()  # models whose last hidden state was checked to be the head's input


class HFHiddenStates:
    """Final hidden states of an `HFScorer`'s model, as float32 tensors on its device."""

    def __init__(self, scorer: HFScorer) -> None:
        self.scorer = scorer
        self.hidden_size = int(scorer.model.config.hidden_size)
        self.device = scorer.device
        self.stop_ids = scorer.stop_ids

    def _final(self, out: Any) -> Any:
        hidden = out.hidden_states[-1]
        model = self.scorer.model
        if id(model) not in _CHECKED:
            import torch

            with torch.inference_mode():
                again = model.get_output_embeddings()(hidden[:, -1:]).float()
            if not torch.allclose(again, out.logits[:, -1:].float(), atol=0.05, rtol=0.02):
                raise ScoringError(f"{self.scorer.model_id}: the last hidden state is not the output head's "
                                   "input; this model cannot be used as a kNN-LM")
            _CHECKED.add(id(model))
        return hidden.float()

    def states(self, sequences: Sequence[Sequence[int]]) -> list[Any]:
        """Hidden states at every position of each sequence, in one right-padded batch."""
        import torch

        scorer = self.scorer
        width = max(len(s) for s in sequences)
        input_ids = torch.zeros((len(sequences), width), dtype=torch.long, device=scorer.device)
        mask = torch.zeros_like(input_ids)
        for row, seq in enumerate(sequences):  # right padding: positions stay 0..n-1, padding is masked
            input_ids[row, : len(seq)] = torch.tensor(list(seq), device=scorer.device)
            mask[row, : len(seq)] = 1
        out = scorer.forward(input_ids=input_ids, attention_mask=mask, output_hidden_states=True, logits_to_keep=1)
        hidden = self._final(out)
        return [hidden[row, : len(seq)] for row, seq in enumerate(sequences)]

    def answer(self, context_ids: Sequence[int], output_ids: Sequence[int]) -> tuple[Any, np.ndarray]:
        """Hidden states predicting each output token, and the LM log-probabilities of those tokens."""
        import torch

        y = list(output_ids)
        if len(context_ids) + len(y) > self.scorer.max_context:
            raise ScoringError(f"question and output of {len(context_ids) + len(y)} tokens exceed the model "
                               f"window of {self.scorer.max_context}")
        seq = torch.tensor([list(context_ids) + y[:-1]], device=self.scorer.device)
        out = self.scorer.forward(input_ids=seq, output_hidden_states=True, logits_to_keep=len(y))
        hidden = self._final(out)[0, -len(y):]
        lp = torch.log_softmax(out.logits[0].float(), dim=-1)
        picked = lp.gather(-1, torch.tensor(y, device=lp.device)[:, None])[:, 0]
        return hidden, picked.double().cpu().numpy()

    def stepper(self, context_ids: Sequence[int], max_new_tokens: int) -> _Stepper:
        """Incremental decoding from `context_ids` with the KV cache kept between steps."""
        check_window(self.scorer, context_ids, max_new_tokens)
        return _Stepper(self, context_ids)


class _Stepper:
    """`step()`: (hidden state [1, dim], next-token probabilities); `feed(token)`: append one."""

    def __init__(self, owner: HFHiddenStates, context_ids: Sequence[int]) -> None:
        import torch

        self.owner = owner
        self.passes = self.tokens = 0
        self._cache: Any = None
        self._input = torch.tensor([list(context_ids)], device=owner.device)

    def step(self) -> tuple[Any, np.ndarray]:
        import torch

        scorer = self.owner.scorer
        out = scorer.forward(input_ids=self._input, cache=self._cache, use_cache=True,
                             output_hidden_states=True, logits_to_keep=1)
        self.passes, self.tokens = self.passes + 1, self.tokens + self._input.shape[1]
        self._cache = scorer.cache_of(out)
        hidden = self.owner._final(out)[0, -1:]
        return hidden, torch.softmax(out.logits[0, -1].float(), dim=-1).double().cpu().numpy()

    def feed(self, token: int) -> None:
        import torch

        self._input = torch.tensor([[token]], device=self.owner.device)
