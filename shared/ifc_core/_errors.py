"""One exception hierarchy for the whole library; every message says what to do about it.

    IFCError                                   base of everything llm-ifc raises
    ├── ConfigurationError (ValueError)        bad argument, option, key or policy: names the field
    │   ├── ConfigurationTypeError (TypeError) an argument of the wrong type (a str where a number goes)
    │   ├── LatticeError                       a lattice specification or label value is malformed
    │   │   └── UnknownElementError            a label names a level/principal/tag the lattice lacks
    │   └── CaseFormatError                    a line of a cases file (names the line and field)
    ├── ModelLoadError (RuntimeError)          the scoring model could not be loaded
    ├── ScoringError (RuntimeError)            scoring failed; propagators fall back to the conservative label
    ├── AuditError (RuntimeError)              an audit record could not be written
    ├── SearchBudgetError                      the label search ran out of its budget: the conservative label
    └── IFCViolation                           a tool call would send data to a sink that may not receive it

Catch `IFCError` for all of them; the `ValueError`/`TypeError`/`RuntimeError` bases let code that
expects the built-in kinds keep working. A configuration error's message reads ``<field>: <fix>``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditError",
    "CaseFormatError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "IFCError",
    "IFCViolation",
    "LatticeError",
    "ModelLoadError",
    "ScoringError",
    "SearchBudgetError",
    "UnknownElementError",
]


class IFCError(Exception):
    """Base class of every error raised by llm-ifc."""


class ConfigurationError(IFCError, ValueError):
    """An argument, option, key or policy entry is invalid; the message names the field and the fix."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """An argument has the wrong type (also a `TypeError`); the message names the field and what to give."""


class LatticeError(ConfigurationError):
    """A lattice specification or a label value is malformed."""


class UnknownElementError(LatticeError):
    """A label names a level, principal, tag or component the lattice does not have."""

    def __init__(self, kind: str, name: object, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        super().__init__(
            f"unknown {kind} {name!r}; this lattice knows {known}. "
            f"Fix the label or add {name!r} to the lattice specification."
        )


class CaseFormatError(ConfigurationError):
    """A line of a cases file is not a valid case; names the line and the field."""

    def __init__(self, line: int, field: str, problem: str) -> None:
        self.line = line
        self.field = field
        self.problem = problem
        super().__init__(f"line {line}, field '{field}': {problem}")


class ModelLoadError(IFCError, RuntimeError):
    """The scoring model could not be loaded."""


class ScoringError(IFCError, RuntimeError):
    """The scorer could not score an output (propagators turn this into the conservative label)."""


class AuditError(IFCError, RuntimeError):
    """An audit record could not be written; the run must not go on unaudited unless asked to."""


class SearchBudgetError(IFCError):
    """The label search ran out of its candidate, scoring or time budget (the decision falls back
    to the conservative label; raise the budget with `SearchBudget` to search further)."""


class IFCViolation(IFCError):
    """A tool call would send data to a sink that may not receive it.

    Carries the structured verdict (`check`, a `FlowCheck`) and, when known, the decision that
    labelled the data (`decision`).
    """

    def __init__(self, check: Any, decision: Any = None) -> None:
        self.check = check
        self.decision = decision
        super().__init__(f"IFC violation: {check.reason}. The call was not made.")

    @property
    def tool(self) -> str:
        return str(self.check.tool)

    @property
    def label(self) -> Any:
        return self.check.label

    @property
    def sink(self) -> Any:
        return self.check.sink

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = self.check.to_dict()
        if self.decision is not None and hasattr(self.decision, "to_dict"):
            d["decision"] = self.decision.to_dict()
        return d
