"""Security lattices and their labels.

A `Lattice` is a finite lattice (L, ⊑, ⊔, ⊓, ⊥, ⊤) whose elements are `Label` values. "Higher"
always means "more restricted": an output that depends on a higher input must carry a higher label.
Four lattices are built in, and `lattice_from_spec` reads their JSON specifications:

- `Chain(levels)`: a total order, e.g. public ⊑ internal ⊑ confidential ⊑ secret, or
  trusted ⊑ untrusted for integrity. JSON label: ``"internal"``.
- `Readers(principals)`: a label is the set of principals allowed to read; fewer readers is
  higher, join is intersection. JSON label: ``["alice", "bob"]``.
- `Tags(tags)`: the powerset of a set of tags; join is union. JSON label: ``["hr", "pii"]``.
- `Product(**components)`: component-wise. JSON label: ``{"conf": "internal", "integrity": "trusted"}``.
"""

from __future__ import annotations

import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._checks import names, shown
from ._errors import ConfigurationTypeError, LatticeError, UnknownElementError

__all__ = ["Label", "Lattice", "Chain", "Readers", "Tags", "Product", "as_label", "lattice_from_spec"]


@dataclass(frozen=True, slots=True)
class Label:
    """An element of a `Lattice`. Compare with ``<=`` (flows to); combine with `join`/`meet`."""

    lattice: Lattice
    value: Hashable

    def _check(self, other: object) -> Label:
        if not isinstance(other, Label):
            raise ConfigurationTypeError(f"label: give a Label (lattice.label(...)), not {shown(other)}")
        if other.lattice != self.lattice:
            raise LatticeError(
                f"cannot compare labels of different lattices: {self.lattice!r} and "
                f"{other.lattice!r}; parse both labels with the same lattice"
            )
        return other

    def __le__(self, other: Label) -> bool:
        """True when data labelled `self` may flow to a place labelled `other`."""
        return self.lattice._leq(self.value, self._check(other).value)

    def __lt__(self, other: Label) -> bool:
        return self <= other and self != other

    def __ge__(self, other: Label) -> bool:
        return self._check(other) <= self

    def __gt__(self, other: Label) -> bool:
        return self._check(other) < self

    def join(self, other: Label) -> Label:
        """Least upper bound: the label of data derived from both."""
        return Label(self.lattice, self.lattice._join(self.value, self._check(other).value))

    def meet(self, other: Label) -> Label:
        """Greatest lower bound."""
        return Label(self.lattice, self.lattice._meet(self.value, self._check(other).value))

    __or__ = join
    __and__ = meet

    def to_json(self) -> Any:
        """The JSON form of this label (see the module docstring)."""
        return self.lattice._to_json(self.value)

    def __repr__(self) -> str:
        return f"Label({json.dumps(self.to_json())})"

    def __str__(self) -> str:
        return json.dumps(self.to_json())


class Lattice(ABC):
    """A finite security lattice. Subclasses define the order on raw values."""

    kind: str

    @property
    def bottom(self) -> Label:
        """The least restricted label (⊥)."""
        return Label(self, self._bottom())

    @property
    def top(self) -> Label:
        """The most restricted label (⊤): what unlabelled data gets."""
        return Label(self, self._top())

    def label(self, value: Any, *, field: str = "label") -> Label:
        """Parse a JSON label; an unknown level, principal or tag raises `UnknownElementError`."""
        return Label(self, self._parse(value, field))

    def join_all(self, labels: Iterable[Label]) -> Label:
        """Join of `labels` (⊥ for none)."""
        result = self.bottom
        for label in labels:
            result = result.join(label)
        return result

    def meet_all(self, labels: Iterable[Label]) -> Label:
        """Meet of `labels` (⊤ for none)."""
        result = self.top
        for label in labels:
            result = result.meet(label)
        return result

    def rank(self, label: Label) -> int:
        """A height compatible with the order (a < b implies rank(a) < rank(b)); used to sort."""
        if not isinstance(label, Label) or label.lattice != self:
            raise LatticeError(f"label: {label!r} is not a label of {self!r}; parse it with this lattice")
        return self._rank(label.value)

    @property
    def _identity(self) -> str:
        """The canonical JSON text of the spec, computed once: lattices are immutable after
        construction, so equality and hashing are O(1) after the first use (labels compare their
        lattices on every `<=` and hash them in every set)."""
        key = self.__dict__.get("_identity_key")
        if key is None:
            key = self.__dict__["_identity_key"] = sys.intern(json.dumps(self.spec(), sort_keys=True))
        return key

    def __eq__(self, other: object) -> bool:
        # interned keys: equal lattices share one key object, so `is` decides without a scan
        return self is other or (isinstance(other, Lattice) and self._identity is other._identity)

    def __hash__(self) -> int:
        return hash(self._identity)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.spec())})"

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """The JSON specification that `lattice_from_spec` reads back."""

    @abstractmethod
    def _parse(self, value: Any, field: str) -> Hashable: ...

    @abstractmethod
    def _to_json(self, value: Any) -> Any: ...

    @abstractmethod
    def _leq(self, a: Any, b: Any) -> bool: ...

    @abstractmethod
    def _join(self, a: Any, b: Any) -> Any: ...

    @abstractmethod
    def _meet(self, a: Any, b: Any) -> Any: ...

    @abstractmethod
    def _bottom(self) -> Any: ...

    @abstractmethod
    def _top(self) -> Any: ...

    @abstractmethod
    def _rank(self, value: Any) -> int: ...


def _names(values: Any, what: str, field: str) -> tuple[str, ...]:
    return names(values, field, what, error=LatticeError, type_error=LatticeError)


class Chain(Lattice):
    """A total order of levels, lowest first: ``Chain(["public", "internal", "secret"])``."""

    kind = "chain"

    def __init__(self, levels: Iterable[str]) -> None:
        if isinstance(levels, (set, frozenset)):
            raise LatticeError("levels: a chain's levels are ordered, lowest first; give a list, not a set")
        self.levels = _names(levels, "level", "levels")
        self._index = {name: i for i, name in enumerate(self.levels)}

    def spec(self) -> dict[str, Any]:
        return {"type": "chain", "levels": list(self.levels)}

    def _parse(self, value: Any, field: str) -> int:
        if not isinstance(value, str):
            raise LatticeError(f"{field}: a chain label is one level name (a string), got {value!r}")
        if value not in self._index:
            raise UnknownElementError("level", value, list(self.levels))
        return self._index[value]

    def _to_json(self, value: int) -> str:
        return self.levels[value]

    def _leq(self, a: int, b: int) -> bool:
        return a <= b

    def _join(self, a: int, b: int) -> int:
        return max(a, b)

    def _meet(self, a: int, b: int) -> int:
        return min(a, b)

    def _bottom(self) -> int:
        return 0

    def _top(self) -> int:
        return len(self.levels) - 1

    def _rank(self, value: int) -> int:
        return value


class _SetLattice(Lattice):
    """Shared parsing for the two powerset lattices."""

    what: str

    def __init__(self, atoms: Iterable[str]) -> None:
        if isinstance(atoms, (set, frozenset)):  # a set's order changes between processes; the spec must not
            atoms = sorted(atoms, key=str)
        self.atoms = _names(atoms, self.what, self.what + "s")
        self._all = frozenset(self.atoms)

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, self.what + "s": list(self.atoms)}

    def _parse(self, value: Any, field: str) -> frozenset[str]:
        if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
            raise LatticeError(f"{field}: a {self.kind} label is a list of {self.what}s, got {value!r}")
        for name in value:
            if name not in self._all:
                raise UnknownElementError(self.what, name, list(self.atoms))
        return frozenset(value)

    def _to_json(self, value: frozenset[str]) -> list[str]:
        return [a for a in self.atoms if a in value]


class Readers(_SetLattice):
    """Reader sets: a label lists who may read; fewer readers is higher; join is intersection."""

    kind = "readers"
    what = "principal"

    def _leq(self, a: frozenset[str], b: frozenset[str]) -> bool:
        return b <= a

    def _join(self, a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
        return a & b

    def _meet(self, a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
        return a | b

    def _bottom(self) -> frozenset[str]:
        return self._all

    def _top(self) -> frozenset[str]:
        return frozenset()

    def _rank(self, value: frozenset[str]) -> int:
        return len(self.atoms) - len(value)


class Tags(_SetLattice):
    """The powerset of tags: a label is a set of categories; join is union."""

    kind = "tags"
    what = "tag"

    def _leq(self, a: frozenset[str], b: frozenset[str]) -> bool:
        return a <= b

    def _join(self, a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
        return a | b

    def _meet(self, a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
        return a & b

    def _bottom(self) -> frozenset[str]:
        return frozenset()

    def _top(self) -> frozenset[str]:
        return self._all

    def _rank(self, value: frozenset[str]) -> int:
        return len(value)


class Product(Lattice):
    """Component-wise product: ``Product(conf=Chain([...]), integrity=Chain(["trusted", "untrusted"]))``."""

    kind = "product"

    def __init__(self, **components: Lattice) -> None:
        if not components:
            raise LatticeError("components: a product needs at least one component lattice")
        for name, lattice in components.items():
            if not isinstance(lattice, Lattice):
                raise LatticeError(f"components.{name}: expected a Lattice, got {type(lattice).__name__}")
        self.components: dict[str, Lattice] = dict(components)
        self._names = tuple(components)

    def spec(self) -> dict[str, Any]:
        return {"type": "product", "components": {n: c.spec() for n, c in self.components.items()}}

    def _parse(self, value: Any, field: str) -> tuple[Any, ...]:
        if not isinstance(value, Mapping):
            raise LatticeError(
                f"{field}: a product label is an object with keys {list(self._names)}, got {value!r}"
            )
        for key in value:
            if key not in self.components:
                raise UnknownElementError("component", key, list(self._names))
        missing = [n for n in self._names if n not in value]
        if missing:
            raise LatticeError(f"{field}: missing component(s) {missing}; give a value for each")
        return tuple(self.components[n]._parse(value[n], f"{field}.{n}") for n in self._names)

    def _to_json(self, value: tuple[Any, ...]) -> dict[str, Any]:
        return {n: self.components[n]._to_json(v) for n, v in zip(self._names, value)}

    def _map(self, op: str, a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(getattr(self.components[n], op)(x, y) for n, x, y in zip(self._names, a, b))

    def _leq(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        return all(self.components[n]._leq(x, y) for n, x, y in zip(self._names, a, b))

    def _join(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
        return self._map("_join", a, b)

    def _meet(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
        return self._map("_meet", a, b)

    def _bottom(self) -> tuple[Any, ...]:
        return tuple(c._bottom() for c in self.components.values())

    def _top(self) -> tuple[Any, ...]:
        return tuple(c._top() for c in self.components.values())

    def _rank(self, value: tuple[Any, ...]) -> int:
        return sum(self.components[n]._rank(v) for n, v in zip(self._names, value))


def lattice_from_spec(spec: Any, *, field: str = "lattice") -> Lattice:
    """Build a lattice from its JSON specification, e.g. ``{"type": "chain", "levels": [...]}``.

    Errors name the offending field (``lattice.components.conf.levels``) and what to write instead.
    """
    if not isinstance(spec, Mapping):
        raise LatticeError(f"{field}: a lattice specification is an object with a 'type', got {spec!r}")
    kind = spec.get("type")
    keys = {"chain": "levels", "readers": "principals", "tags": "tags", "product": "components"}
    if kind not in keys:
        raise LatticeError(f"{field}.type: unknown lattice type {kind!r}; use one of {list(keys)}")
    key = keys[kind]
    extra = set(spec) - {"type", key}
    if extra:
        raise LatticeError(f"{field}: unexpected key(s) {sorted(extra)} for a {kind} lattice")
    if key not in spec:
        raise LatticeError(f"{field}.{key}: missing; a {kind} lattice needs '{key}'")
    body = spec[key]
    if kind == "product":
        if not isinstance(body, Mapping) or not body:
            raise LatticeError(f"{field}.components: give an object of named component lattices")
        return Product(**{n: lattice_from_spec(s, field=f"{field}.components.{n}") for n, s in body.items()})
    if isinstance(body, str) or not isinstance(body, list):
        raise LatticeError(f"{field}.{key}: give a list of names, got {body!r}")
    try:
        return {"chain": Chain, "readers": Readers, "tags": Tags}[kind](body)
    except LatticeError as exc:
        raise LatticeError(f"{field}.{exc}") from None


def as_label(lattice: Lattice, value: Any, field: str) -> Label:
    """`value` as a label of `lattice`: a `Label` of it, or its JSON form (``"public"``,
    ``{"conf": "public", ...}``). Anything else is an error naming `field`."""
    if isinstance(value, Label):
        if value.lattice != lattice:
            raise LatticeError(f"{field}: label {value} belongs to {value.lattice!r}, not to {lattice!r}; "
                               "parse it with the same lattice")
        return value
    try:
        return lattice.label(value, field=field)
    except LatticeError as exc:
        msg = str(exc)
        raise LatticeError(msg if msg.startswith(field) else f"{field}: {msg}") from None
