"""Propagators by name, for every entry point that selects one (CLI, adapters, evaluation)."""

from __future__ import annotations

import inspect
from typing import Any

from . import _checks as checks
from ._errors import ConfigurationError
from ._introspection import IntrospectionPropagator
from ._knn import KNNLMPropagator
from ._lattice import Lattice
from ._conservative import ConservativePropagator
from ._permissive import PermissivePropagator
from ._propagators import Propagator
from .scoring.base import Scorer
from .scoring.hf import HFScorer

__all__ = ["PROPAGATORS", "make_propagator", "resolve_propagator"]

PROPAGATORS: dict[str, type[Propagator]] = {
    cls.name: cls for cls in (ConservativePropagator, PermissivePropagator, KNNLMPropagator,
                                IntrospectionPropagator)
}


def make_propagator(name: str, scorer: Scorer | None, **options: Any) -> Propagator:
    """The propagator registered under `name`; `options` it does not take (a tolerance for one
    that has none) are ignored, but an option no propagator takes (a misspelt one) is an error."""
    checks.choice(name, "propagator", sorted(PROPAGATORS))
    known = {p for c in PROPAGATORS.values() for p in _options(c)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigurationError(f"options: no propagator takes {unknown}; the options are {sorted(known)}")
    cls = PROPAGATORS[name]
    accepted = _options(cls)
    return cls(scorer, **{k: v for k, v in options.items() if k in accepted})


def _options(cls: type[Propagator]) -> set[str]:
    """The keyword options of a propagator's constructor."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY}


def resolve_propagator(propagator: Propagator | str, *, lattice: Lattice | None = None) -> Propagator:
    """`propagator` itself, or the one registered under that name on the embedded model
    (`HFScorer.embedded()`). Build the object yourself to choose the model or options."""
    if isinstance(propagator, Propagator):
        return propagator
    if not isinstance(propagator, str):
        raise checks.wrong_type("propagator", f"a Propagator or one of {sorted(PROPAGATORS)}", propagator)
    checks.choice(propagator, "propagator", sorted(PROPAGATORS))
    checks.instance(lattice, Lattice, "lattice", "a Lattice", optional=True)
    return make_propagator(propagator, HFScorer.embedded(), lattice=lattice)
