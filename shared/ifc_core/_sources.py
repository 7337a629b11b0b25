"""Labelled inputs: the query and the documents an LLM call sees."""

from __future__ import annotations

from dataclasses import dataclass

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
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("LabelledSource.id: give a non-empty string id")
        if not isinstance(self.text, str):
            raise ValueError(f"LabelledSource.text of {self.id!r}: give the text as a string")
        if self.label is not None and not isinstance(self.label, Label):
            raise ValueError(
                f"LabelledSource.label of {self.id!r}: give a Label (lattice.label(...)) or None"
            )
