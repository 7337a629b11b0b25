"""The kNN-LM propagator of method.md: documents go into a datastore instead of the prompt.

The model sees only the question; at each output position its final hidden state is the query
for the k nearest datastore entries, whose next tokens form p_kNN (softmax over −distance /
temperature, summed per token). The output's probability is p = α·p_kNN + (1 − α)·p_LM.
Restricting the datastore to entries of documents labelled ⊑ L is a filter on the same query
vectors, so one model pass serves every candidate label. The label search, tolerance test and
decision records are those of the prompt-based propagator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _checks as checks
from ._errors import ConfigurationError, ScoringError
from ._knn_store import KNNDatastore, hidden_states_of
from ._lattice import Label, Lattice
from ._prompt import ChatPrompt
from ._inputs import DecisionInputs, Output
from ._propagators import Propagator
from ._search import SearchBudget, Tolerance, search_label
from ._spans import ScoreMemo, span_labels, spans_of
from ._record import Candidate, Decision
from .scoring.base import Generation, Scorer
from ._sources import LabelledSource

__all__ = ["KNNLMPropagator"]


@dataclass(frozen=True)
class _KNNGeneration(Generation):
    """A generation under the interpolated distribution, with what the label search needs."""

    queries: Any = None  # final hidden state at each output position
    lm_logprobs: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class _Pass:
    passes: int = 0
    tokens: int = 0


def knn_probability(dist: np.ndarray, values: np.ndarray, targets: np.ndarray, temperature: float) -> np.ndarray:
    """p_kNN(target) per row: softmax over −distance/temperature of the neighbours, summed over
    those whose value is the target. Rows without neighbours give 0."""
    finite = np.isfinite(dist)
    nearest = np.where(finite, dist, np.inf).min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        shifted = np.where(finite, -(dist - nearest) / temperature, -np.inf)
    weights = np.exp(shifted)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    return (weights * (values == targets[:, None])).sum(axis=1)


class KNNLMPropagator(Propagator):
    """Labels an output by how much a datastore of the documents' hidden states explains it.

    `alpha` (interpolation weight), `k` (neighbours) and `temperature` (on squared L2 distances)
    are the scoring constants, calibrated for safe labels in docs/calibration.md. Enforce mode
    generates with its own `generation_alpha` and `generation_temperature`, tuned for answers
    that do not loop; its labels stay sound whatever they are, because the released text is
    regenerated from the admitted entries only. Without `datastore`, each decision
    builds an exact per-request store from its documents (encodings are cached per text); with a
    persistent `KNNDatastore` (faiss) covering the documents, that one is searched instead.
    """

    name = "knnlm"

    def __init__(self, scorer: Scorer, *, tolerance: Tolerance | float | None = None, alpha: float = 0.75,
                 k: int = 16, temperature: float = 50.0, generation_alpha: float = 0.25,
                 generation_temperature: float = 200.0, datastore: KNNDatastore | None = None,
                 prompt: ChatPrompt | None = None, lattice: Lattice | None = None,
                 max_candidates: int = 4096) -> None:
        super().__init__(scorer, prompt=prompt, lattice=lattice)
        self.tolerance = Tolerance.of(tolerance)
        if type(self.tolerance) is not Tolerance:
            raise ConfigurationError(f"tolerance: the kNN-LM propagator judges with mean+guard only (Tolerance), not "
                                     f"{self.tolerance.name!r}: its search has no per-document token view")
        self.alpha = checks.number(alpha, "alpha", above=0, below=1)
        self.generation_alpha = checks.number(generation_alpha, "generation_alpha", above=0, below=1)
        self.k = checks.whole(k, "k")
        self.temperature = checks.number(temperature, "temperature", above=0)
        self.generation_temperature = checks.number(generation_temperature, "generation_temperature", above=0)
        self.datastore = checks.instance(datastore, KNNDatastore, "datastore", "a KNNDatastore", optional=True)
        self.max_candidates = checks.whole(max_candidates, "max_candidates")

    @property
    def settings(self) -> dict[str, Any]:
        return {"lam": self.tolerance.lam, "max_token_increase": self.tolerance.max_token_increase,
                "alpha": self.alpha, "k": self.k, "temperature": self.temperature,
                "generation_alpha": self.generation_alpha, "generation_temperature": self.generation_temperature,
                "datastore": "persistent" if self.datastore is not None else "per-request"}

    def datastore_for(self, inputs: DecisionInputs, docs: Sequence[LabelledSource]) -> tuple[KNNDatastore, int, int]:
        """The store holding exactly `docs`: the persistent one restricted to them when it covers
        them (same text, same model, a tag no higher than the label given now), else a fresh exact
        store. Returns (store, model passes, tokens) spent encoding."""
        scorer = self._need_scorer()
        persistent = self.datastore
        if (persistent is not None and persistent.covers(docs, scorer.model_id)
                and all(persistent.tag_of(d.id) <= inputs.label_of(d) for d in docs)):
            return persistent.restricted(d.id for d in docs), 0, 0
        encoders: list[Any] = []
        relabelled = [LabelledSource(d.id, d.text, inputs.label_of(d)) for d in docs]
        store = KNNDatastore.build(scorer, relabelled, prompt=self.prompt, counter=encoders)
        return store, encoders[0].passes, encoders[0].tokens

    # estimate and enforce ----------------------------------------------------------------------

    def label(self, query: LabelledSource, documents: Sequence[LabelledSource], output: Output,
              *, id: str | None = None, spans: Mapping[str, tuple[int, int]] | None = None) -> Decision:
        def admit(inputs: DecisionInputs, text: str, ids: tuple[int, ...] | None, spent: list[Any]) -> tuple[Any, ...]:
            scorer = self._need_scorer()
            y = ids if ids is not None else scorer.encode(text)
            if not y:
                raise ScoringError("the output has no tokens")
            store, passes, tokens = self.datastore_for(inputs, inputs.documents)
            spent.append(_Pass(passes, tokens))
            context = self.prompt.build(inputs.query.text, []).ids
            queries, lm = self._answer_pass(context, tuple(y), spent)
            masks = spans_of(spans, scorer, y, text, inputs.notes)
            return self._search(inputs, store, queries, lm, np.asarray(y), masks)

        return self._estimate(query, documents, output, id, admit)

    def enforce(self, query: LabelledSource, documents: Sequence[LabelledSource], *,
                max_new_tokens: int = 128, id: str | None = None) -> Decision:
        def admit(inputs: DecisionInputs, docs: list[LabelledSource], context: tuple[int, ...],
                  gen: _KNNGeneration, spent: list[Any]) -> tuple[Any, ...]:
            store, passes, tokens = self.datastore_for(inputs, docs)  # encodings cached by _generate
            spent.append(_Pass(passes, tokens))
            return self._search(inputs, store, gen.queries, gen.lm_logprobs, np.asarray(gen.ids))

        return self._safety_wrapper(query, documents, max_new_tokens, id, admit)

    def _search(self, inputs: DecisionInputs, store: KNNDatastore, queries: Any, lm: np.ndarray,
                targets: np.ndarray, masks: Mapping[str, np.ndarray] | None = None) -> tuple[Any, ...]:
        def score(sets: list[frozenset[str]]) -> list[np.ndarray]:
            return [self._mix(store.restricted(s).search(queries, self.k), lm, targets) for s in sets]

        memo = ScoreMemo(score)  # shared with the spans' searches (per-argument labels)
        found: tuple[Label, list[str], list[Candidate]] = search_label(inputs, inputs.documents, memo, self.tolerance,
                                                                       self.max_candidates)
        if not masks:
            return found
        return (*found, span_labels(inputs, inputs.documents, memo, self.tolerance, masks,
                                    budget=SearchBudget.of(None, self.max_candidates),
                                    max_candidates=self.max_candidates))

    def _mix(self, found: tuple[np.ndarray, np.ndarray], lm: np.ndarray, targets: np.ndarray) -> np.ndarray:
        p_knn = knn_probability(*found, targets, self.temperature)
        if not np.isfinite(found[0]).any():  # an empty datastore: the kNN-LM is the LM itself
            return lm
        with np.errstate(divide="ignore"):
            return np.log(self.alpha * p_knn + (1.0 - self.alpha) * np.exp(lm))

    # model passes ------------------------------------------------------------------------------

    def _answer_pass(self, context: tuple[int, ...], y: tuple[int, ...], spent: list[Any]) -> tuple[Any, np.ndarray]:
        """One pass over [context; y]: the query vectors and LM log-probabilities of y."""
        hidden, lm = hidden_states_of(self._need_scorer()).answer(context, y)
        spent.append(_Pass(1, len(context) + len(y) - 1))
        return hidden, lm

    def _generate(self, inputs: DecisionInputs, docs: list[LabelledSource], max_new_tokens: int
                  ) -> tuple[tuple[int, ...], Generation]:
        """Greedy decoding from the question alone, under the interpolated distribution with the
        datastore holding exactly `docs`."""
        import torch

        hidden = hidden_states_of(self._need_scorer())
        store, passes, tokens = self.datastore_for(inputs, docs)
        context = self.prompt.build(inputs.query.text, []).ids
        stepper = hidden.stepper(context, max_new_tokens)
        ids: list[int] = []
        mixed: list[float] = []
        lm_lp: list[float] = []
        queries: list[Any] = []
        for _ in range(max_new_tokens):
            h, p_lm = stepper.step()
            dist, vals = store.search(h, self.k)
            alpha, temp = self.generation_alpha, self.generation_temperature
            p = (1.0 - alpha) * p_lm if np.isfinite(dist).any() else p_lm.copy()
            for v in set(vals[0][vals[0] >= 0].tolist()):
                p[v] += alpha * knn_probability(dist, vals, np.array([v]), temp)[0]
            tok = int(np.argmax(p))
            if tok in hidden.stop_ids:
                break
            ids.append(tok)
            mixed.append(float(np.log(p[tok])))
            lm_lp.append(float(np.log(p_lm[tok])) if p_lm[tok] > 0 else -np.inf)
            queries.append(h)
            stepper.feed(tok)
        stacked = torch.cat(queries) if queries else None
        gen = _KNNGeneration(tuple(ids), np.asarray(mixed), passes + stepper.passes, tokens + stepper.tokens,
                             None, queries=stacked, lm_logprobs=np.asarray(lm_lp))
        return context, gen
