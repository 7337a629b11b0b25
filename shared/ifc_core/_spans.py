"""Per-argument labels: the label search of a decision, restricted to one span of the output.

A tool call's arguments can come from different inputs: ``send_email(to=<from the user's
request>, body=<an internal document>)``. Each argument value (and each call's own line) is a
span of the rendered output (`render_call_spans`). Its label is found by the same search as the
output's, with the tolerance test looking only at the span's tokens: a document is needed for
the span when withholding it makes *those* tokens less likely. Every search of one decision
shares one memo of scored contexts (`ScoreMemo`), so a span costs model work only for contexts
the output's own search did not visit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._inputs import DecisionInputs
from ._lattice import Label
from ._search import Prune, SearchBudget, Tolerance, TokenView, search_label

if TYPE_CHECKING:
    from ._sources import LabelledSource

__all__ = ["ScoreMemo", "span_labels", "token_masks"]

Score = Callable[[list[frozenset[str]]], Sequence[np.ndarray]]


class ScoreMemo:
    """`score` memoized by document set for one decision (pre-seeded with `known`)."""

    def __init__(self, score: Score, known: Mapping[frozenset[str], np.ndarray] | None = None) -> None:
        self._score = score
        self.cache: dict[frozenset[str], np.ndarray] = dict(known or {})

    def __call__(self, sets: list[frozenset[str]]) -> list[np.ndarray]:
        missing = [s for s in dict.fromkeys(sets) if s not in self.cache]
        if missing:
            for s, scores in zip(missing, self._score(missing)):
                self.cache[s] = np.asarray(scores, dtype=np.float64)
        return [self.cache[s] for s in sets]

    def restricted(self, mask: np.ndarray) -> tuple[Score, dict[frozenset[str], np.ndarray]]:
        """The score of the masked tokens only, and what is already known of it."""
        return (lambda sets: [a[mask] for a in self(sets)]), {s: a[mask] for s, a in self.cache.items()}


def token_masks(decode: Callable[[Sequence[int]], str], output_ids: Sequence[int], text: str,
                spans: Mapping[str, tuple[int, int]]) -> tuple[dict[str, np.ndarray], str | None]:
    """For each character span of `text`, the output tokens that overlap it; ({}, why) when the
    tokens do not decode to `text` (the spans would point at the wrong tokens)."""
    ids = [int(t) for t in output_ids]
    ends, at = [], 0
    for i in range(len(ids)):
        at = max(at, len(decode(ids[: i + 1])))
        ends.append(at)
    if decode(ids) != text:
        return {}, "per-argument labels not scored: the output's tokens do not decode to its text"
    starts = [0, *ends[:-1]]
    masks = {name: np.array([s < b and e > a for s, e in zip(starts, ends)], dtype=bool)
             for name, (a, b) in spans.items()}
    return masks, None


def _masked(view: TokenView | None, mask: np.ndarray) -> TokenView | None:
    return None if view is None else view.sliced(np.flatnonzero(mask))


def span_labels(inputs: DecisionInputs, docs: list[LabelledSource], memo: ScoreMemo, tolerance: Tolerance,
                masks: Mapping[str, np.ndarray], *, budget: SearchBudget, max_candidates: int | None = None,
                view: TokenView | None = None, floor: Label | None = None, prune: Prune = "exact"
                ) -> dict[str, Label]:
    """The label of each span: the query's label joined with the search's label over the span's
    tokens. A span with no token of its own gets none (its call's label applies); a span whose
    search fails gets the conservative label, and the decision's notes say why. `floor` and
    `prune` as in `search_label` (the floor is the query's label, joined into every span's)."""
    labels: dict[str, Label] = {}
    for name, mask in masks.items():
        if not mask.any():
            continue
        score, known = memo.restricted(mask)
        try:
            best, _, _ = search_label(inputs, docs, score, tolerance, max_candidates, known, budget=budget,
                                      view=_masked(view, mask), floor=floor, prune=prune)
        except Exception as exc:  # fail closed, for this span
            inputs.notes.append(f"span {name}: {type(exc).__name__}: {exc}; it carries the conservative label")
            labels[name] = inputs.conservative
            continue
        labels[name] = inputs.query_label.join(best)
    return labels


def spans_of(spans: Mapping[str, tuple[int, int]] | None, scorer: Any, ids: Sequence[int], text: str,
             notes: list[str]) -> dict[str, np.ndarray]:
    """The token masks of `spans` (none asked: none), the reason in `notes` when they cannot be found."""
    if not spans:
        return {}
    masks, problem = token_masks(scorer.decode, ids, text, spans)
    if problem:
        notes.append(problem)
    return masks
