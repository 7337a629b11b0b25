"""Labels as flat metadata (for Chroma and any store with scalar metadata), and clearance filters.

The canonical key ``ifc_label`` holds the label's JSON text; scalar facets make `where` filters
possible: ``ifc_level`` (chain index), ``ifc_reader_<name>`` and ``ifc_tag_<name>`` booleans, each
prefixed by the component name inside a product (``ifc_conf_level``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import _checks as checks
from ._errors import LatticeError
from ._lattice import Chain, Label, Lattice, Product, Readers, Tags, as_label

__all__ = ["LABEL_KEY", "LABEL_PROBLEM_KEY", "LabelCodec"]

LABEL_KEY = "ifc_label"
LABEL_PROBLEM_KEY = "ifc_label_problem"  # set on records whose stored label was missing or unparseable


class LabelCodec:
    """Labels to and from flat Chroma metadata, and clearances to `where` filters."""

    def __init__(self, lattice: Lattice) -> None:
        self.lattice = checks.instance(lattice, Lattice, "LabelCodec.lattice", "a Lattice")

    def encode(self, label: Label, *, missing: bool = False) -> dict[str, str | int | bool]:
        """The metadata keys that store `label`; `missing=True` also flags a label that was
        missing or unparseable and replaced by ⊤."""
        checks.instance(label, Label, "label", "a Label")
        checks.flag(missing, "missing")
        if label.lattice != self.lattice:
            raise LatticeError(f"label: {label} is not in this store's lattice {self.lattice!r}")
        meta: dict[str, str | int | bool] = {LABEL_KEY: json.dumps(label.to_json(), separators=(",", ":"))}
        self._facets(self.lattice, label.value, "ifc_", meta)
        if missing:
            meta[LABEL_PROBLEM_KEY] = "missing or unparseable label; treated as the top label"
        return meta

    def _facets(self, lattice: Lattice, value: Any, prefix: str, meta: dict[str, Any]) -> None:
        if isinstance(lattice, Chain):
            meta[prefix + "level"] = int(value)
        elif isinstance(lattice, Readers):
            meta.update({f"{prefix}reader_{p}": p in value for p in lattice.atoms})
        elif isinstance(lattice, Tags):
            meta.update({f"{prefix}tag_{t}": t in value for t in lattice.atoms})
        elif isinstance(lattice, Product):
            for (name, component), v in zip(lattice.components.items(), value):
                self._facets(component, v, f"{prefix}{name}_", meta)

    def decode(self, metadata: Mapping[str, Any] | None) -> Label | None:
        """The label written in `metadata`; None when it is missing or unparseable.

        This only parses: a label in metadata is believed only once its seal is checked (see
        `RetrievalGate` and `FlowTracker.document`).
        """
        raw = (metadata or {}).get(LABEL_KEY) if isinstance(metadata, Mapping) else None
        if not isinstance(raw, str):
            return None
        try:
            return self.lattice.label(json.loads(raw))
        except (ValueError, LatticeError, RecursionError):
            return None

    def facets_agree(self, metadata: Mapping[str, Any], label: Label) -> bool:
        """Whether the filter facets stored in `metadata` are exactly those of `label` (a record
        whose facets disagree would pass clearance filters it should fail)."""
        checks.instance(metadata, Mapping, "metadata", "a mapping")
        facets = {k: v for k, v in self.encode(label).items() if k != LABEL_KEY}
        return all(type(metadata.get(k)) is type(v) and metadata.get(k) == v for k, v in facets.items())

    def where(self, clearance: Label) -> dict[str, Any] | None:
        """A Chroma `where` filter that keeps records labelled ⊑ `clearance` (a `Label` or its JSON
        form; None: no filter)."""
        clearance = as_label(self.lattice, clearance, "clearance")
        clauses: list[dict[str, Any]] = []
        self._clauses(self.lattice, clearance.value, "ifc_", clauses)
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _clauses(self, lattice: Lattice, value: Any, prefix: str, out: list[dict[str, Any]]) -> None:
        if isinstance(lattice, Chain):
            if value < len(lattice.levels) - 1:
                out.append({prefix + "level": {"$lte": int(value)}})
        elif isinstance(lattice, Readers):  # the record must let every cleared reader read
            out.extend({f"{prefix}reader_{p}": True} for p in lattice.atoms if p in value)
        elif isinstance(lattice, Tags):  # the record may carry only cleared tags
            out.extend({f"{prefix}tag_{t}": False} for t in lattice.atoms if t not in value)
        elif isinstance(lattice, Product):
            for (name, component), v in zip(lattice.components.items(), value):
                self._clauses(component, v, f"{prefix}{name}_", out)
