"""Labellers: trusted application code that labels a tool's structured result item by item.

A whole tool result is one source with one label, so a benign call that reads an inbox holding
one injected email is untrusted by construction. A *labeller*, registered in the `Policy` (never
read from the result), splits the structured result into items and labels each one: each email
by its sender's domain, each transaction by whether the user authored it, each search hit
untrusted. Each item becomes its own labelled source of the run, with a stable id (the tool
result's id and the item's path); the text the model saw is unchanged.

    policy = Policy(lattice, results={"read_inbox": PerItem(lambda mail: "trusted" if
                    mail["sender"].endswith("@acme.example") else "untrusted", fallback="untrusted")})

The engine locates each item's text in the result text (`labelled_items`). It fails closed: a
labeller that raises, an item whose text is not found in what the model saw, an unknown label
or two items on one path, and the whole result carries the fallback label (the labeller's
``fallback``, else the policy's declared result label, else ⊤), with the reason in the notes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._account import Known
from ._lattice import Label, Lattice, as_label

__all__ = ["Item", "Labeller", "PerItem", "as_labeller", "labelled_items"]


@dataclass(frozen=True)
class Item:
    """One item of a tool result: its `path` in the result (stable: an index or a key), its
    `label` (a `Label` or its JSON form) and where it is in the text the model saw: `text`
    verbatim, or else `value`, found by its JSON or Python rendering."""

    path: str
    label: Any
    value: Any = None
    text: str | None = None


class Labeller(ABC):
    """Splits a tool's structured result into labelled `Item`s. Trusted code: register it in the
    `Policy` (``results={"tool": labeller}`` or ``labellers={"tool": labeller}``).

    `result` is what the tool returned as the adapter sees it: a LangChain artifact
    (``content_and_artifact``), a LlamaIndex ``ToolOutput.raw_output``, or the message text itself
    when that is all there is (a LangChain tool's structured return reaches a `ToolMessage` as
    JSON text). `fallback` labels what no item covers, and the whole result when labelling
    fails (None: the policy's declared result label, else ⊤).
    """

    fallback: Any = None

    @abstractmethod
    def items(self, result: Any) -> Iterable[Item]:
        """The labelled items of `result`."""


class _FunctionLabeller(Labeller):
    def __init__(self, fn: Callable[[Any], Iterable[Any]], fallback: Any = None) -> None:
        self.fn, self.fallback = fn, fallback

    def items(self, result: Any) -> Iterable[Item]:
        for got in self.fn(result):
            if isinstance(got, Item):
                yield got
            elif isinstance(got, tuple) and len(got) == 3:
                yield Item(str(got[0]), got[2], value=got[1])
            else:
                raise TypeError(f"a labeller yields Item(path, label, value=...) or (path, value, label), not {got!r}")


class PerItem(Labeller):
    """Each element of a list result is an item, labelled by ``label(element)``.

    `select(result)` gives other items as (path, value) pairs (default: the elements of a list or
    tuple with their indices; any other result is one item, path ``"0"``). A result that arrives as
    text is read as JSON first (how LangChain passes a tool's structured return): register a
    labeller only for tools that build their result as a structure, never for one that returns
    text someone else wrote.
    """

    def __init__(self, label: Callable[[Any], Any], *, fallback: Any = None,
                 select: Callable[[Any], Iterable[tuple[Any, Any]]] | None = None) -> None:
        if not callable(label):
            raise TypeError("PerItem.label: give a function from an item to its label")
        self.label, self.fallback, self.select = label, fallback, select

    def items(self, result: Any) -> Iterable[Item]:
        if isinstance(result, (str, bytes)):
            result = json.loads(result)
        pairs = self.select(result) if self.select is not None else (
            enumerate(result) if isinstance(result, (list, tuple)) else [(0, result)])
        for path, value in pairs:
            yield Item(str(path), self.label(value), value=value)


def as_labeller(value: Any, field: str) -> Labeller:
    """A `Labeller`, or a function ``result -> items`` made into one."""
    if isinstance(value, Labeller):
        return value
    if callable(value):
        return _FunctionLabeller(value)
    raise TypeError(f"{field}: give a Labeller (e.g. PerItem(...)) or a function result -> items, "
                    f"not {type(value).__name__}")


def _renderings(value: Any) -> Iterable[str]:
    """The texts under which a value may appear in a tool result: JSON (as LangChain writes it,
    then ASCII-escaped), Python's str and repr (str(list), LlamaIndex), and a string as it is."""
    for dump in (lambda v: json.dumps(v, ensure_ascii=False), json.dumps, str, repr):
        try:
            yield dump(value)
        except Exception:  # noqa: BLE001 - a value with no such rendering
            continue
    if isinstance(value, str):
        yield value


def labelled_items(labeller: Labeller, result: Any, content: str, lattice: Lattice, prefix: str
                   ) -> tuple[list[Known], str | None]:
    """The items of `result` as texts of known origin (part ids ``prefix/path``), each found in
    `content`; or ([], why) when labelling fails and the result must keep its fallback label."""
    try:
        found: list[Known] = []
        paths: set[str] = set()
        for item in labeller.items(result):
            if not isinstance(item, Item):
                raise TypeError(f"the labeller gave {item!r}, not an Item")
            path = str(item.path)
            if path in paths:
                return [], f"the labeller gave two items at path {path!r}"
            paths.add(path)
            label = item.label if isinstance(item.label, Label) else as_label(lattice, item.label, f"item {path!r}")
            if label.lattice != lattice:
                return [], f"item {path!r}: its label is not of the policy's lattice"
            texts = [item.text] if item.text is not None else list(_renderings(item.value))
            text = next((t.strip() for t in texts if t.strip() and t.strip() in content), None)
            if text is None:
                return [], f"item {path!r} is not in the text the model saw (its items do not cover the result)"
            found.append(Known(text, "source", label, f"{prefix}/{path}"))
        return found, None
    except Exception as exc:  # noqa: BLE001 - any error of the application's code fails closed
        return [], f"the labeller failed ({type(exc).__name__}: {exc})"
