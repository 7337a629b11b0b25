"""Tool policies: which labels a tool accepts (its sink) and which label its results carry.

A policy is trusted configuration, written by the application's developers. It is never read
from a model's tool call, a tool's result or a document's text.

    policy = Policy(lattice,
                    sinks={"send_email": {"conf": "public", "integrity": "trusted"}},
                    arguments={"send_email": {"to": {"conf": "internal", "integrity": "trusted"}}},
                    results={"web_search": {"conf": "public", "integrity": "untrusted"}})

A tool with no declared sink accepts any label (`default_sink`, ⊤ unless you set it; set it to
``lattice.bottom`` for deny-by-default). A tool with no declared result label returns ⊤ data:
unlabelled input is the most restricted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import IFCError, IFCViolation, LatticeError
from ._lattice import Label, Lattice

__all__ = ["Policy", "FlowCheck", "IFCViolation"]


@dataclass(frozen=True)
class FlowCheck:
    """The verdict on one tool call: may data labelled `label` flow into `tool` (at `argument`)?"""

    tool: str
    label: Label
    sink: Label
    argument: str | None = None
    tool_call_id: str | None = None
    allowed: bool = True
    provenance: str | None = None  # how the label of the call was found

    @property
    def reason(self) -> str:
        where = f"argument '{self.argument}' of tool '{self.tool}'" if self.argument else f"tool '{self.tool}'"
        if self.allowed:
            return f"{self.label} flows to {where} (accepts up to {self.sink})"
        return (f"data labelled {self.label} may not flow to {where}, which accepts at most "
                f"{self.sink}")

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "argument": self.argument, "tool_call_id": self.tool_call_id,
                "label": self.label.to_json(), "sink": self.sink.to_json(), "allowed": self.allowed,
                "reason": self.reason, "provenance": self.provenance}


@dataclass
class Policy:
    """Sinks and result labels of tools, by tool name (labels in JSON form or `Label`)."""

    lattice: Lattice
    sinks: Mapping[str, Any] = field(default_factory=dict)
    arguments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    results: Mapping[str, Any] = field(default_factory=dict)
    default_sink: Any = None
    labelled_tools: Collection[str] = ()

    def __post_init__(self) -> None:
        parse = self._parse
        self._sinks = {t: parse(v, f"sinks.{t}") for t, v in self.sinks.items()}
        self._arguments = {t: {a: parse(v, f"arguments.{t}.{a}") for a, v in args.items()}
                           for t, args in self.arguments.items()}
        self._results = {t: parse(v, f"results.{t}") for t, v in self.results.items()}
        self._default = (self.lattice.top if self.default_sink is None
                         else parse(self.default_sink, "default_sink"))
        if isinstance(self.labelled_tools, str) or not all(isinstance(t, str) for t in self.labelled_tools):
            raise IFCError("Policy.labelled_tools: give a list of tool names")
        self._labelled = frozenset(self.labelled_tools)

    def _parse(self, value: Any, field: str) -> Label:
        if isinstance(value, Label):
            if value.lattice != self.lattice:
                raise IFCError(f"Policy.{field}: label {value} is not in the policy's lattice")
            return value
        try:
            return self.lattice.label(value, field=f"Policy.{field}")
        except LatticeError as exc:
            raise LatticeError(f"Policy.{field}: {exc}") from None

    @classmethod
    def from_dict(cls, lattice: Lattice, spec: Mapping[str, Any]) -> Policy:
        """From ``{"sinks": {...}, "arguments": {...}, "results": {...}, "default_sink": ...}``."""
        unknown = set(spec) - {"sinks", "arguments", "results", "default_sink", "labelled_tools"}
        if unknown:
            raise IFCError(f"Policy: unknown key(s) {sorted(unknown)}; use sinks, arguments, results, "
                           "default_sink, labelled_tools")
        return cls(lattice, **spec)

    def sink(self, tool: str) -> Label:
        """The highest label `tool` accepts as a whole."""
        return self._sinks.get(tool, self._default)

    def result_label(self, tool: str) -> Label:
        """The label of what `tool` returns (⊤ when undeclared)."""
        return self._results.get(tool, self.lattice.top)

    def declared_result(self, tool: str) -> Label | None:
        """The declared label of `tool`'s results, None when undeclared."""
        return self._results.get(tool)

    def labelled_channels(self, tool: str) -> tuple[str, ...]:
        """The seals under which `tool`'s documents keep their own labels: its own labelled-tool
        seal, and a labelled retriever's when the policy lists it in `labelled_tools`."""
        return (f"tool:{tool}", "retriever") if tool in self._labelled else (f"tool:{tool}",)

    def check(self, tool: str, label: Label, args: Mapping[str, Any] | None = None, *,
              argument_labels: Mapping[str, Label] | None = None,
              tool_call_id: str | None = None, provenance: str | None = None) -> FlowCheck:
        """The first failing check of a call (the whole call, then each declared argument).

        `label` is the label of the model output that produced the call. Arguments with their own
        sink are checked against `argument_labels[arg]` when given, else against `label`. Only
        argument *names* are read from `args`; their values never change the verdict.
        """
        if label.lattice != self.lattice:
            label = self.lattice.top  # a label from elsewhere is in doubt
        whole = FlowCheck(tool, label, self.sink(tool), tool_call_id=tool_call_id,
                          allowed=label <= self.sink(tool), provenance=provenance)
        if not whole.allowed:
            return whole
        for arg, sink in self._arguments.get(tool, {}).items():
            if args is not None and arg not in args:
                continue
            arg_label = (argument_labels or {}).get(arg, label)
            if not arg_label <= sink:
                return FlowCheck(tool, arg_label, sink, arg, tool_call_id, allowed=False, provenance=provenance)
        return whole
