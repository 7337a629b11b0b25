"""One propagator over a list of cases, in one mode: the loop every part of `ifc eval` shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from .._account import render_call_spans
from .._record import Decision
from ._cases import EvalCase

__all__ = ["label_all"]


def label_all(name: str, prop: Any, cases: Sequence[EvalCase], mode: str, max_new_tokens: int,
              out: list[tuple[EvalCase, Decision]]) -> list[tuple[EvalCase, Decision]]:
    """(case, decision) for each case, also appended to `out`. Estimate mode labels the case's
    reference output (its tool calls' arguments as spans of their own); enforce mode generates."""
    pairs = []
    desc = cases[0].dataset if cases else "-"
    for case in tqdm(cases, desc=f"{desc} {name} {mode}", unit="case", leave=False):
        prop.lattice = case.lattice
        if mode == "estimate":
            spans = render_call_spans("", case.calls)[1] if case.calls else None
            d = prop.label(case.query, case.documents, case.output, id=case.id, spans=spans)
        else:
            d = prop.enforce(case.query, case.documents, max_new_tokens=max_new_tokens, id=case.id)
        pairs.append((case, d))
    out.extend(pairs)
    return pairs
