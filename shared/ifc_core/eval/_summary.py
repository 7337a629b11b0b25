"""`DIR/summary.json`: the report's figures in machine-readable form, beside README.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._metrics import Metrics

__all__ = ["summary"]

FIELDS = ("improved", "exact", "unsafe", "fallback")


def _key(dataset: str) -> str:
    """``<dataset>/<kind>``: AgentDojo's rows already name their kind (benign, malicious, and per
    suite ``agentdojo-<suite>/<kind>``); a dataset without kinds is ``<dataset>/all``."""
    return dataset if "/" in dataset else f"{dataset}/all"


def _fraction(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name}: a share must be a fraction in [0, 1], got {value!r}")
    return float(value)


def summary(metrics: Sequence[Metrics]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"<dataset>/<kind>": {"<propagator>/<mode>": {"cases": n, "improved": x, "exact": x,
    "unsafe": x, "fallback": x, "s_per_decision": x}}}`` for every metrics row: shares are
    fractions in [0, 1], None (JSON null) where nothing was counted, s_per_decision the mean
    wall time of a decision in seconds (None without decisions)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for m in metrics:
        row: dict[str, Any] = {"cases": int(m.cases)}
        for name in FIELDS:
            row[name] = _fraction(getattr(m, name), f"{m.dataset} {m.propagator}/{m.mode} {name}")
        row["s_per_decision"] = None if m.seconds is None else float(m.seconds)
        out.setdefault(_key(m.dataset), {})[f"{m.propagator}/{m.mode}"] = row
    return out
