"""`Tracked`: what `IFCCallbackHandler.track()` saw, and the label of what its last run returned."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from ifc_core import Decision, Label

if TYPE_CHECKING:
    from ._callback import IFCCallbackHandler

__all__ = ["Tracked"]


class Tracked:
    """What `IFCCallbackHandler.track()` saw: the runs started inside its block."""

    def __init__(self, handler: IFCCallbackHandler) -> None:
        self.handler = handler
        self.keys: list[Hashable] = []
        self.answers: dict[Hashable, str | None] = {}  # what each root run returned, as text

    @property
    def decisions(self) -> list[Decision]:
        """Every decision of those runs, in order."""
        return [d for k in self.keys for d in self.handler.decisions(k)]

    def _answer(self) -> tuple[Label | None, Decision | None]:
        if not self.keys:
            return None, None
        key = self.keys[-1]
        return self.handler.tracker.answer_of(key, self.answers.get(key))

    @property
    def decision(self) -> Decision | None:
        """The decision of the output the last run returned (None when it returned no output as
        produced, e.g. a chain that combined several: see `label`)."""
        return self._answer()[1]

    @property
    def label(self) -> Label | None:
        """The label of what the last run returned: its output's label when it returned one output
        as produced, else the join of every label of the run (a grader's "Yes" after the answer
        does not speak for the answer). None when nothing was labelled."""
        return self._answer()[0]
