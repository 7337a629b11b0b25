"""One exception hierarchy for the engine; every message says what to do about it."""

from __future__ import annotations

__all__ = [
    "IFCError",
    "LatticeError",
    "UnknownElementError",
    "CaseFormatError",
    "ModelLoadError",
    "ScoringError",
]


class IFCError(Exception):
    """Base class of every error raised by llm-ifc."""


class LatticeError(IFCError, ValueError):
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


class CaseFormatError(IFCError, ValueError):
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
