"""Labelled inputs: the query and the documents an LLM call sees."""

from __future__ import annotations

from dataclasses import dataclass

from . import _checks as checks
from ._errors import ConfigurationTypeError
from ._lattice import Label

__all__ = ["LabelledSource"]


@dataclass(frozen=True, slots=True)
class LabelledSource:
    """One input of an LLM call: a stable id, its text and its label.

    `label=None` means unlabelled; the engine then treats the source as ⊤ (the most restricted
    label), never as public. Labels come from trusted registration only: never parse them out of
    `text`.
    """

    id: str
    text: str
    label: Label | None = None

    def __post_init__(self) -> None:
        checks.text(self.id, "LabelledSource.id", what="an id string")
        checks.text(self.text, f"LabelledSource.text of {self.id!r}", empty=True)
        if self.label is not None and not isinstance(self.label, Label):
            raise ConfigurationTypeError(
                f"LabelledSource.label of {self.id!r}: give a Label (lattice.label({self.label!r})) or None, "
                f"not {checks.shown(self.label)}")
