"""Decision records: what was decided, from what, at what cost. One JSON line per decision."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from . import _checks as checks
from ._errors import AuditError
from ._lattice import Label

_log = logging.getLogger("llm_ifc")

__all__ = ["Candidate", "Decision", "AuditLog"]

Mode = Literal["estimate", "enforce"]
_LINE_BREAKS = ("\x85", "\u2028", "\u2029")


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
    regenerations: list[dict[str, Any]] = field(default_factory=list)  # each: withheld, why, model_calls
    passes: int = 0
    tokens: int = 0
    wall_time_s: float = 0.0
    model_id: str | None = None
    fallback_reason: str | None = None
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    spans: dict[str, Label] = field(default_factory=dict)  # per call ("call:<i>") and argument ("call:<i>:<name>")

    def call_labels(self, index: int) -> tuple[Label, dict[str, Label]]:
        """(the label of call `index` of this output, each of its arguments' own labels).

        In estimate mode, where the propagator scored the call's spans (``spans``), each argument
        has its own label and the call's label is the join of its line's and its arguments'.
        In enforce mode the released call was computed only from what `label` admits, so that
        is the label of the call and of every argument; so also where no span was scored.
        """
        line = self.spans.get(f"call:{index}")
        if self.mode == "enforce" or line is None:
            return self.label, {}
        prefix = f"call:{index}:"
        args = {k[len(prefix):]: v for k, v in self.spans.items() if k.startswith(prefix)}
        for v in args.values():
            line = line.join(v)
        return line, args

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
            spans={k: v.to_json() for k, v in self.spans.items()},
        )
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


class AuditLog:
    """Appends one JSON line per decision (or event) to a file; safe to share between threads and
    processes.

    Every record is one whole line: a file left without a final newline (a writer killed
    mid-record) gets one before the next record, and each record goes out in a single write. Any
    text encodes (lone surrogates are escaped). A write that fails raises `AuditError`, which
    stops the run, unless the application chose ``on_error="warn"`` (log and go on unaudited).
    """

    def __init__(self, path: str | os.PathLike[str], *, on_error: Literal["raise", "warn"] = "raise") -> None:
        self.path = checks.output_file(path, "AuditLog.path")
        checks.choice(on_error, "AuditLog.on_error", ("raise", "warn"))
        self.on_error = on_error
        self._lock = threading.Lock()

    @staticmethod
    def encode(entry: Decision | dict[str, Any]) -> bytes:
        """One record as one UTF-8 JSON line (a lone surrogate becomes a JSON escape)."""
        data = entry.to_dict() if isinstance(entry, Decision) else entry
        text = json.dumps(data, ensure_ascii=False, default=str)
        for separator in _LINE_BREAKS:  # characters str.splitlines() breaks on, which JSON leaves raw
            text = text.replace(separator, f"\\u{ord(separator):04x}")
        return text.encode("utf-8", "backslashreplace") + b"\n"

    def write(self, entry: Decision | dict[str, Any]) -> None:
        """Append `entry` (a `Decision` or a JSON-able dict) as one line."""
        checks.instance(entry, (Decision, dict), "entry", "a Decision or a dict")
        try:
            line = self.encode(entry)
            with self._lock:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        line = b"\n" + line  # a torn record before us: never glue onto it
                    os.write(fd, line)
                finally:
                    os.close(fd)  # also releases the lock
        except (OSError, TypeError, ValueError) as exc:
            if self.on_error == "warn":
                _log.warning("audit record not written to %s: %s", self.path, exc)
                return
            raise AuditError(f"could not write an audit record to {self.path!r}: {exc}") from exc
