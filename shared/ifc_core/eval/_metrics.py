"""Label-quality and cost metrics over (case, decision) pairs; pure functions, no model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._lattice import Label
from .._record import Decision
from ._cases import EvalCase

__all__ = ["Metrics", "case_label", "leaks", "retains", "summarise"]


@dataclass(frozen=True)
class Metrics:
    """One table row: a propagator on a dataset in one mode.

    `improved` is over the cases where improvement is possible; `unsafe` is a label below the
    ground truth in estimate mode, and a leak (a withheld document's key in the released text) in
    enforce mode; `retention` (enforce mode) is over the cases whose unrestricted answer states
    every needed key. Shares are None where nothing was counted.
    """

    dataset: str
    propagator: str
    mode: str
    cases: int
    improved: float | None
    exact: float | None
    unsafe: float | None
    fallback: float | None
    retention: float | None
    passes: float | None
    seconds: float | None


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def case_label(case: EvalCase, decision: Decision) -> Label:
    """The label a case is judged by: for an output that renders tool calls (`case.calls`), the
    join of each call's own label (`Decision.call_labels`: its line and its arguments, each
    scored as a span of its own), the label the policy check of those calls uses; else the
    decision's label."""
    if not case.calls:
        return decision.label
    return decision.label.lattice.join_all([decision.call_labels(i)[0] for i in range(len(case.calls))])


def leaks(case: EvalCase, decision: Decision) -> bool:
    """Whether the released text states a key of a withheld document that nothing admitted states."""
    admitted_text = " ".join([case.query.text, *(d.text for d in case.documents if d.id in decision.admitted)])
    return any(key in decision.output and key not in admitted_text
               for doc, key in case.keys.items() if doc in decision.withheld)


def retains(case: EvalCase, output: str) -> bool:
    """Whether `output` states every key of the documents the case needs."""
    return all(case.keys[d] in output for d in case.needed if d in case.keys)


def summarise(dataset: str, propagator: str, mode: str, pairs: Sequence[tuple[EvalCase, Decision]],
              reference: Mapping[str, str] | None = None) -> Metrics:
    """Metrics of `pairs`; `reference` maps case ids to the unrestricted (conservative) answer,
    for retention in enforce mode."""
    possible = [(c, d) for c, d in pairs if c.can_improve]
    known = [(c, d) for c, d in pairs if c.truth is not None]

    def label(c: EvalCase, d: Decision) -> Label:
        return case_label(c, d) if mode == "estimate" else d.label

    if mode == "estimate":
        unsafe_share = _share(sum(not c.truth <= label(c, d) for c, d in known), len(known))  # type: ignore[operator]
        retention = None
    else:
        unsafe_share = _share(sum(leaks(c, d) for c, d in pairs), len(pairs))
        base = [(c, d) for c, d in pairs if c.needed and reference and retains(c, reference.get(c.id, ""))]
        retention = _share(sum(retains(c, d.output) for c, d in base), len(base))
    return Metrics(
        dataset, propagator, mode, len(pairs),
        improved=_share(sum(label(c, d) < d.conservative_label for c, d in possible), len(possible)),
        exact=_share(sum(label(c, d) == c.truth for c, d in known), len(known)) if mode == "estimate" else None,
        unsafe=unsafe_share,
        fallback=_share(sum(d.fallback_reason is not None for _, d in pairs), len(pairs)),
        retention=retention,
        passes=_mean([d.passes for _, d in pairs]),
        seconds=_mean([d.wall_time_s for _, d in pairs]),
    )
