"""Propagators by name, for every entry point that selects one (CLI, adapters, evaluation)."""

from __future__ import annotations

import inspect
from typing import Any

from ._introspection import IntrospectionPropagator
from ._propagators import ConservativePropagator, PermissivePropagator, Propagator
from ._scorer import HFScorer

__all__ = ["PROPAGATORS", "make_propagator"]

PROPAGATORS: dict[str, type[Propagator]] = {
    cls.name: cls for cls in (ConservativePropagator, PermissivePropagator, IntrospectionPropagator)
}


def make_propagator(name: str, scorer: HFScorer | None, **options: Any) -> Propagator:
    """The propagator registered under `name`; `options` it does not take (a tolerance for one
    that has none) are ignored."""
    if name not in PROPAGATORS:
        raise ValueError(f"unknown propagator {name!r}; use one of {sorted(PROPAGATORS)}")
    cls = PROPAGATORS[name]
    accepted = inspect.signature(cls.__init__).parameters
    return cls(scorer, **{k: v for k, v in options.items() if k in accepted})
