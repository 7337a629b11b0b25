"""Evaluation cases: inputs with their labels, a reference output and the ground-truth label."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._lattice import Label, Lattice
from .._sources import LabelledSource

__all__ = ["EvalCase"]


@dataclass(frozen=True)
class EvalCase:
    """One labelling problem with a known answer.

    `output` is the reference output for estimate mode. `truth` is the minimal label that output
    deserves: the query's label joined with the labels of the documents it needs (None where it
    is not known, as for benign agent calls). `keys` maps a
    document id to the string that shows its content was used (for leaks and retention in enforce
    mode); `needed` lists the documents the output needs. `calls` are the tool calls the output
    renders (``render_tool_calls("", calls)``), whose arguments get labels of their own.
    """

    dataset: str
    id: str
    kind: str
    lattice: Lattice
    query: LabelledSource
    documents: tuple[LabelledSource, ...]
    output: str
    truth: Label | None
    needed: tuple[str, ...] = ()
    keys: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    calls: tuple[Mapping[str, Any], ...] = ()

    @property
    def conservative(self) -> Label:
        """The join of every input's label (what classic taint tracking gives)."""
        return self.lattice.join_all([self.query.label or self.lattice.top,
                                      *(d.label or self.lattice.top for d in self.documents)])

    @property
    def can_improve(self) -> bool:
        """Whether a label below the conservative one is correct for this case (assumed where the
        truth is unknown)."""
        return self.truth is None or self.truth < self.conservative
