"""Propagators by name, for every entry point that selects one (CLI, adapters, evaluation)."""

from __future__ import annotations

import inspect
from typing import Any

from ._introspection import IntrospectionPropagator
from ._knn import KNNLMPropagator
from ._lattice import Lattice
from ._propagators import ConservativePropagator, PermissivePropagator, Propagator
from .scoring.base import Scorer
from .scoring.hf import HFScorer

__all__ = ["PROPAGATORS", "make_propagator", "resolve_propagator"]

PROPAGATORS: dict[str, type[Propagator]] = {
    cls.name: cls for cls in (ConservativePropagator, PermissivePropagator, KNNLMPropagator,
                                IntrospectionPropagator)
}


def make_propagator(name: str, scorer: Scorer | None, **options: Any) -> Propagator:
    """The propagator registered under `name`; `options` it does not take (a tolerance for one
    that has none) are ignored."""
    if name not in PROPAGATORS:
        raise ValueError(f"unknown propagator {name!r}; use one of {sorted(PROPAGATORS)}")
    cls = PROPAGATORS[name]
    accepted = inspect.signature(cls.__init__).parameters
    return cls(scorer, **{k: v for k, v in options.items() if k in accepted})


def resolve_propagator(propagator: Propagator | str, *, lattice: Lattice | None = None) -> Propagator:
    """`propagator` itself, or the one registered under that name on the embedded model
    (`HFScorer.embedded()`). Build the object yourself to choose the model or options."""
    if isinstance(propagator, Propagator):
        return propagator
    if not isinstance(propagator, str):
        raise TypeError(f"propagator: give a Propagator or one of {sorted(PROPAGATORS)}, "
                        f"not {type(propagator).__name__}")
    if propagator not in PROPAGATORS:
        raise ValueError(f"propagator: unknown name {propagator!r}; use one of {sorted(PROPAGATORS)}")
    return make_propagator(propagator, HFScorer.embedded(), lattice=lattice)
