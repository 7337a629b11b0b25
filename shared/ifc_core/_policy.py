"""Tool policies: which labels a tool accepts (its sink) and which label its results carry.

A policy is trusted configuration, written by the application's developers. It is never read
from a model's tool call, a tool's result or a document's text.

    policy = Policy(lattice,
                    sinks={"send_email": {"conf": "public", "integrity": "trusted"},
                           "search_docs": lattice.top},                 # may receive anything
                    arguments={"send_email": {"to": {"conf": "internal", "integrity": "trusted"}}},
                    results={"web_search": {"conf": "public", "integrity": "untrusted"},
                             "read_inbox": PerItem(label_by_sender, fallback=...)})   # per item

A tool's result label may be a *labeller* (`PerItem`, any `Labeller`, or a function given in
`labellers`): trusted code that labels a structured result item by item (`_items.py`). Its
fallback (the labeller's own, or the tool's entry in `results`) labels what no item covers, and
the whole result when labelling fails.

**Undeclared sinks are closed**: a call to a tool with no declared sink is refused, unless the
application opens every undeclared tool on purpose with `default_sink` (e.g. ``lattice.top`` to
let them receive anything). A tool with no declared result label returns ⊤ data: unlabelled input
is the most restricted. Where an adapter knows the agent's tools, `check_tools` refuses a policy
that names a tool the agent does not have ("did you mean ...?") or leaves a guarded tool without
a sink.
"""

from __future__ import annotations

import difflib

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._attest import tool_channel
from ._errors import ConfigurationError, IFCViolation, LatticeError
from ._items import Labeller, as_labeller
from ._lattice import Label, Lattice, as_label

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
    undeclared: bool = False  # the tool has no sink in the policy: closed
    arguments: tuple[tuple[str, Label], ...] = ()  # each argument's own label, where it was scored

    @property
    def argument_labels(self) -> dict[str, Label]:
        """Each argument's own label (estimate mode, scored as its own span of the output)."""
        return dict(self.arguments)

    @property
    def reason(self) -> str:
        where = f"argument '{self.argument}' of tool '{self.tool}'" if self.argument else f"tool '{self.tool}'"
        if self.undeclared:
            return (f"tool '{self.tool}' has no sink in the policy, and undeclared sinks are closed: declare "
                    f"one (Policy(sinks={{'{self.tool}': ...}})), or open every undeclared tool on purpose "
                    "with Policy(default_sink=...)")
        if self.allowed:
            return f"{self.label} flows to {where} (accepts up to {self.sink})"
        return (f"data labelled {self.label} may not flow to {where}, which accepts at most "
                f"{self.sink}")

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "argument": self.argument, "tool_call_id": self.tool_call_id,
                "label": self.label.to_json(), "sink": self.sink.to_json(), "allowed": self.allowed,
                "reason": self.reason, "provenance": self.provenance, "undeclared": self.undeclared,
                "argument_labels": {a: lab.to_json() for a, lab in self.arguments}}


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k for k in value):
        raise ConfigurationError(f"Policy.{field}: give a mapping of tool (or argument) names to labels, "
                                 f"like {{'send_email': 'public'}}; got {type(value).__name__}")
    return value


@dataclass
class Policy:
    """Sinks and result labels of tools, by tool name (labels in JSON form or `Label`)."""

    lattice: Lattice
    sinks: Mapping[str, Any] = field(default_factory=dict)
    arguments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    results: Mapping[str, Any] = field(default_factory=dict)
    default_sink: Any = None
    labelled_tools: Collection[str] = ()
    labellers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.lattice, Lattice):
            raise ConfigurationError(f"Policy.lattice: give a Lattice (e.g. Chain([...])), not "
                                     f"{type(self.lattice).__name__}")
        for name in ("sinks", "arguments", "results", "labellers"):
            _mapping(getattr(self, name), name)
        parse = self._parse
        self._sinks = {t: parse(v, f"sinks.{t}") for t, v in self.sinks.items()}
        self._arguments = {t: {a: parse(v, f"arguments.{t}.{a}") for a, v in _mapping(args, f"arguments.{t}").items()}
                           for t, args in self.arguments.items()}
        self._labellers: dict[str, Labeller] = {t: v for t, v in self.results.items() if isinstance(v, Labeller)}
        self._results = {t: parse(v, f"results.{t}") for t, v in self.results.items() if not isinstance(v, Labeller)}
        for t, v in self.labellers.items():
            if t in self._labellers:
                raise ConfigurationError(f"Policy.labellers.{t}: results.{t} is a labeller already; give one")
            try:
                self._labellers[t] = as_labeller(v, f"Policy.labellers.{t}")
            except TypeError as exc:
                raise ConfigurationError(str(exc)) from None
        for t, lab in self._labellers.items():  # the labeller's own fallback, else results' label, else ⊤
            if lab.fallback is not None:
                if t in self._results:
                    raise ConfigurationError(f"Policy.results.{t}: its labeller has a fallback already; give one")
                self._results[t] = parse(lab.fallback, f"results.{t} (the labeller's fallback)")
        self._default = None if self.default_sink is None else parse(self.default_sink, "default_sink")
        if isinstance(self.labelled_tools, (str, Mapping)) or not isinstance(self.labelled_tools, Collection) \
                or not all(isinstance(t, str) and t for t in self.labelled_tools):
            raise ConfigurationError("Policy.labelled_tools: give a list of tool names")
        self._labelled = frozenset(self.labelled_tools)

    def _parse(self, value: Any, field: str) -> Label:
        try:
            return as_label(self.lattice, value, f"Policy.{field}")
        except LatticeError as exc:
            raise LatticeError(f"{exc} (a label of the policy's lattice, or its JSON form)") from None

    def named_tools(self) -> set[str]:
        """Every tool name the policy mentions."""
        return {*self._sinks, *self._arguments, *self._results, *self._labelled, *self._labellers}

    def check_tools(self, tools: Collection[str], guarded: Collection[str] | None = None) -> None:
        """Refuse a policy that does not fit the agent's `tools` (where an adapter knows them).

        Every tool the policy names must exist (an unknown name is an error naming the closest
        real one), and every `guarded` tool (default: all of `tools`) needs a sink, unless
        `default_sink` opens undeclared tools on purpose.
        """
        tools = set(tools)
        for name in sorted(self.named_tools() - tools):
            close = difflib.get_close_matches(name, sorted(tools), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the agent's tools are {sorted(tools)}"
            raise ConfigurationError(f"Policy: it names the tool {name!r}, which the agent does not have{hint}")
        self.check_guarded(tools if guarded is None else guarded)

    def check_guarded(self, tools: Collection[str]) -> None:
        """Refuse to guard a tool the policy gives no sink (unless `default_sink` opens it)."""
        if self._default is not None:
            return
        for name in sorted(set(tools) - set(self._sinks)):
            close = difflib.get_close_matches(name, sorted(self.named_tools()), n=1)
            hint = f"; did you mean {close[0]!r}? (the policy names it)" if close else ""
            raise ConfigurationError(
                f"Policy.sinks: tool {name!r} has no sink{hint}. Undeclared sinks are closed, so every call "
                f"to it would be refused: declare it (sinks={{{name!r}: ...}}), or set default_sink")

    @classmethod
    def from_dict(cls, lattice: Lattice, spec: Mapping[str, Any]) -> Policy:
        """From ``{"sinks": {...}, "arguments": {...}, "results": {...}, "default_sink": ...}``."""
        if not isinstance(spec, Mapping):
            raise ConfigurationError("Policy.from_dict: give an object with sinks, arguments, results, ...")
        unknown = set(spec) - {"sinks", "arguments", "results", "default_sink", "labelled_tools", "labellers"}
        if unknown:
            raise ConfigurationError(f"Policy: unknown key(s) {sorted(unknown)}; use sinks, arguments, results, "
                           "default_sink, labelled_tools, labellers")
        return cls(lattice, **spec)

    def sink(self, tool: str) -> Label | None:
        """The highest label `tool` accepts as a whole; None when it has none (closed)."""
        return self._sinks.get(tool, self._default)

    def result_label(self, tool: str) -> Label:
        """The label of what `tool` returns (⊤ when undeclared)."""
        return self._results.get(tool, self.lattice.top)

    def declared_result(self, tool: str) -> Label | None:
        """The declared label of `tool`'s results (with a labeller: its fallback), None when undeclared."""
        return self._results.get(tool)

    def labeller(self, tool: str) -> Labeller | None:
        """The labeller of `tool`'s results, if the policy registers one."""
        return self._labellers.get(tool)

    def labelled_channels(self, tool: str) -> tuple[str, ...]:
        """The seals under which `tool`'s documents keep their own labels: its own labelled-tool
        seal, and a labelled retriever's when the policy lists it in `labelled_tools`."""
        return (tool_channel(tool), "retriever") if tool in self._labelled else (tool_channel(tool),)

    def check(self, tool: str, label: Label, args: Mapping[str, Any] | None = None, *,
              argument_labels: Mapping[str, Label] | None = None,
              tool_call_id: str | None = None, provenance: str | None = None) -> FlowCheck:
        """The first failing check of a call (the whole call, then each declared argument).

        `label` is the label of the call (of the model output that produced it). Arguments with
        their own sink are checked against `argument_labels[arg]` when given, else against
        `label`. Only argument *names* are read from `args`; their values never change the verdict.
        """
        top = self.lattice.top
        if label.lattice != self.lattice:
            label = top  # a label from elsewhere is in doubt
        own = tuple((str(a), lab if lab.lattice == self.lattice else top) for a, lab in (argument_labels or {}).items())
        sink = self.sink(tool)
        if sink is None:  # undeclared sinks are closed
            return FlowCheck(tool, label, self.lattice.bottom, tool_call_id=tool_call_id, allowed=False,
                             provenance=provenance, undeclared=True, arguments=own)
        whole = FlowCheck(tool, label, sink, tool_call_id=tool_call_id, allowed=label <= sink, provenance=provenance,
                          arguments=own)
        if not whole.allowed:
            return whole
        for arg, sink in self._arguments.get(tool, {}).items():
            if args is not None and arg not in args:
                continue
            arg_label = dict(own).get(arg, label)
            if not arg_label <= sink:
                return FlowCheck(tool, arg_label, sink, arg, tool_call_id, allowed=False, provenance=provenance,
                                 arguments=own)
        return whole
