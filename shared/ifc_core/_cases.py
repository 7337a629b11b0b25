"""The JSONL case format of `ifc label`: one case per line.

    {"id": "c1", "lattice": {"type": "chain", "levels": ["public", "secret"]},
     "query": {"text": "...", "label": "public"},
     "documents": [{"id": "d1", "text": "...", "label": "secret"}],
     "output": "..."}

`output` may be absent in enforce mode. Every error names the line and the field.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from ._errors import CaseFormatError, LatticeError
from ._lattice import Lattice, lattice_from_spec
from ._sources import LabelledSource

__all__ = ["Case", "read_cases"]


@dataclass(frozen=True)
class Case:
    """One parsed case."""

    id: str
    lattice: Lattice
    query: LabelledSource
    documents: list[LabelledSource]
    output: str | None


def _text(obj: dict[str, Any], key: str, line: int, field: str) -> str:
    if key not in obj:
        raise CaseFormatError(line, field, "missing; give a string")
    if not isinstance(obj[key], str):
        raise CaseFormatError(line, field, f"must be a string, got {type(obj[key]).__name__}")
    return obj[key]


def _source(obj: Any, line: int, field: str, lattice: Lattice, default_id: str | None = None) -> LabelledSource:
    if not isinstance(obj, dict):
        raise CaseFormatError(line, field, 'must be an object {"id": ..., "text": ..., "label": ...}')
    sid = obj.get("id", default_id)
    if not isinstance(sid, (str, int)) or isinstance(sid, bool) or sid == "":
        raise CaseFormatError(line, f"{field}.id", "missing or not a string; give each document an id")
    text = _text(obj, "text", line, f"{field}.text")
    if "label" not in obj:
        raise CaseFormatError(line, f"{field}.label", "missing; every input needs a label from the lattice")
    try:
        label = lattice.label(obj["label"], field=f"{field}.label")
    except LatticeError as exc:
        raise CaseFormatError(line, f"{field}.label", str(exc)) from None
    return LabelledSource(str(sid), text, label)


def parse_case(raw: str, line: int, *, need_output: bool) -> Case:
    """Parse one line; raises `CaseFormatError` naming the line and field."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CaseFormatError(line, "<line>", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise CaseFormatError(line, "<line>", "each line must be one JSON object")
    bad = _lone_surrogate(obj, "")
    if bad is not None:
        shown = bad.encode("utf-8", "backslashreplace").decode("utf-8")  # a key may hold it too
        raise CaseFormatError(line, shown, "holds a lone surrogate (an escape like \\ud800 without "
                              "its pair), which is not text; fix or remove it")
    unknown = set(obj) - {"id", "lattice", "query", "documents", "output"}
    if unknown:
        raise CaseFormatError(line, sorted(unknown)[0], "unknown field; expected id, lattice, query, documents, output")
    cid = obj.get("id", str(line))
    if not isinstance(cid, (str, int)) or isinstance(cid, bool):
        raise CaseFormatError(line, "id", "must be a string or an integer")
    if "lattice" not in obj:
        raise CaseFormatError(line, "lattice", 'missing; e.g. {"type": "chain", "levels": ["public", "secret"]}')
    try:
        lattice = lattice_from_spec(obj["lattice"])
    except LatticeError as exc:
        field, _, problem = str(exc).partition(": ")
        raise CaseFormatError(line, field, problem) from None
    if "query" not in obj:
        raise CaseFormatError(line, "query", 'missing; give {"text": ..., "label": ...}')
    query = _source(obj["query"], line, "query", lattice, default_id="query")
    docs = obj.get("documents", [])
    if not isinstance(docs, list):
        raise CaseFormatError(line, "documents", "must be a list of documents")
    documents = [_source(d, line, f"documents[{i}]", lattice) for i, d in enumerate(docs)]
    ids = [d.id for d in documents]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise CaseFormatError(line, "documents", f"document id {dup!r} appears twice; ids must be unique")
    output = obj.get("output")
    if output is not None and not isinstance(output, str):
        raise CaseFormatError(line, "output", "must be a string")
    if need_output and output is None:
        raise CaseFormatError(line, "output", "missing; estimate mode labels a given output (or use --mode enforce)")
    return Case(str(cid), lattice, query, documents, output)


def _lone_surrogate(obj: Any, field: str) -> str | None:
    """The field of the first string (key or value) in `obj` that is not valid Unicode text."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return field
        return None
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        where = f"{field}[{key}]" if isinstance(key, int) else f"{field}.{key}" if field else str(key)
        if isinstance(key, str) and _lone_surrogate(key, where) is not None:
            return where
        found = _lone_surrogate(value, where)
        if found is not None:
            return found
    return None


def read_cases(path: str | os.PathLike[str], *, need_output: bool) -> list[Case]:
    """Read and validate a whole cases file before anything is labelled (UTF-8, an optional BOM)."""
    cases = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise CaseFormatError(n, "<line>", f"not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                                      f"{exc.start + 1}); save the file as UTF-8") from None
            if text.strip():
                cases.append(parse_case(text, n, need_output=need_output))
    return cases
