"""Decision records: what was decided, from what, at what cost. One JSON line per decision."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ._lattice import Label

__all__ = ["Candidate", "Decision", "AuditLog"]

Mode = Literal["estimate", "enforce"]


@dataclass(frozen=True)
class Candidate:
    """One candidate label the search scored."""

    label: Any  # JSON form
    documents: list[str]
    mean_nll: float
    mean_increase: float
    max_token_increase: float
    similar: bool


@dataclass
class Decision:
    """The label of one LLM output, and the record of how it was reached.

    `label` is the output's label; `output` the text it applies to (in enforce mode, the
    regenerated text). `fallback_reason` is set whenever the conservative label was used because
    something went wrong or was in doubt.
    """

    id: str | None
    mode: Mode
    propagator: str
    label: Label
    conservative_label: Label
    query_label: Label
    output: str
    admitted: list[str]
    withheld: list[str]
    candidates: list[Candidate] = field(default_factory=list)
    regenerated: bool = False
    passes: int = 0
    tokens: int = 0
    wall_time_s: float = 0.0
    model_id: str | None = None
    fallback_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def improved(self) -> bool:
        """True when the label is strictly below the conservative one."""
        return self.label < self.conservative_label

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (labels in their JSON forms)."""
        d = {k: v for k, v in asdict(self).items() if not isinstance(v, Label)}
        d.update(
            label=self.label.to_json(),
            conservative_label=self.conservative_label.to_json(),
            query_label=self.query_label.to_json(),
            lattice=self.label.lattice.spec(),
            improved=self.improved,
        )
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


class AuditLog:
    """Appends one JSON line per decision (or event) to a file; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()

    def write(self, entry: Decision | dict[str, Any]) -> None:
        line = entry.to_json() if isinstance(entry, Decision) else json.dumps(entry, ensure_ascii=False)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
