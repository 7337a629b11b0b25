"""The inputs of one decision (`DecisionInputs`) and the checks of a propagator call's other
arguments: what every propagator and the label search take, in a module of its own so that the
search and the propagators both depend on it and not on each other."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import _checks as checks
from ._errors import ConfigurationError
from ._lattice import Label, Lattice
from ._sources import LabelledSource

__all__ = ["DecisionInputs", "Output", "check_call"]

Output = str | Sequence[int]


class DecisionInputs:
    """The inputs of one decision, with every label checked; unknown or missing labels become ⊤."""

    def __init__(self, query: LabelledSource, documents: Sequence[LabelledSource],
                 lattice: Lattice | None) -> None:
        checks.instance(query, LabelledSource, "query", "a LabelledSource")
        self.query, self.documents = query, checks.items(documents, LabelledSource, "documents", "LabelledSource")
        checks.instance(lattice, Lattice, "lattice", "a Lattice", optional=True)
        given = [s.label for s in [query, *self.documents] if s.label is not None]
        lattice = lattice or (given[0].lattice if given else None)
        if lattice is None:
            raise ConfigurationError("lattice: no input carries a label; pass lattice=... so unlabelled inputs "
                                     "can be given ⊤")
        self.lattice = lattice
        self.notes: list[str] = []
        self.problem: str | None = None
        ids = [d.id for d in self.documents]
        if len(set(ids)) != len(ids):
            self.problem = "duplicate document ids; each document needs its own id"
        self.query_label = self._checked(query)
        checked = [self._checked(d) for d in self.documents]
        self.labels = dict(zip(ids, checked))
        # from the list, not the dict: duplicate ids must not hide a label from the conservative join
        self.conservative = self.query_label.join(lattice.join_all(checked))

    def _checked(self, source: LabelledSource) -> Label:
        if source.label is None:
            self.notes.append(f"{source.id}: unlabelled, treated as ⊤")
            return self.lattice.top
        if source.label.lattice != self.lattice:
            self.problem = f"{source.id}: label {source.label} is not in this lattice"
            return self.lattice.top
        return source.label

    def label_of(self, doc: LabelledSource) -> Label:
        return self.labels[doc.id]

    def admitted(self, label: Label) -> list[str]:
        """The ids of the documents at or below `label`, in their order."""
        return [d.id for d in self.documents if self.label_of(d) <= label]

    def by_rank(self, documents: Sequence[LabelledSource] | None = None) -> list[LabelledSource]:
        """Documents sorted by label rank (stable), so restricted contexts share prompt prefixes."""
        return sorted(self.documents if documents is None else documents,
                      key=lambda d: self.lattice.rank(self.label_of(d)))


def check_call(*, output: Any = "", max_new_tokens: Any = 1, id: Any = None) -> None:
    """The arguments of `label`/`enforce` besides the inputs (those `DecisionInputs` checks)."""
    checks.text(id, "id", empty=True, optional=True)
    checks.whole(max_new_tokens, "max_new_tokens")
    if isinstance(output, str):
        return
    if isinstance(output, (bytes, Mapping)) or not isinstance(output, Iterable) or iter(output) is output:
        raise checks.wrong_type("output", "the output as text, or its token ids in a list or tuple", output)
    bad = next((t for t in output if isinstance(t, bool) or not isinstance(t, numbers.Integral)), None)
    if bad is not None:
        raise checks.wrong_type("output", "token ids (whole numbers) when not text", bad)
