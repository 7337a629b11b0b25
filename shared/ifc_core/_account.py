"""Where each piece of a prompt came from, and so which label it carries.

An adapter hands the engine the prompt a framework is about to send (`PromptMessage`s). The
engine splits every message into segments by origin (docs/method.md, "Where labels come from"):

- the user's request and the application's fixed text (template literals, the system prompts
  it declares) carry the query's label and are never withheld;
- a registered source, an earlier answer or a tool result carries its own label and can be
  withheld (a *part* of the prompt);
- any other text is unexplained: a part at ⊤.

`PromptAccount.render(withheld)` gives the messages again without the withheld parts, for the
enforce wrappers' regeneration.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dataclasses
import json
import re
import string
from typing import Protocol

from ._lattice import Label
from ._sources import LabelledSource

__all__ = ["PromptMessage", "DocumentView", "Known", "Segment", "PromptAccount", "Origins", "account_prompt",
           "locate", "missing_items", "render_tool_calls", "render_call_spans", "template_literals", "WITHHELD"]

Role = Literal["system", "user", "assistant", "tool"]
WITHHELD = "withheld: label above the answer's"


@dataclass(frozen=True)
class DocumentView:
    """A framework document as the engine sees it: id, text and metadata (untrusted until checked)."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptMessage:
    """One message of a prompt, translated from a framework's message type.

    `tool_name`, `tool_call_id`, `documents` (the labelled documents a tool result carries) and
    `result` (the tool's structured result, for the policy's labeller) are for tool messages;
    `tool_calls` and `seal` (an enforce wrapper's seal of its label) for assistant messages. A
    plain completion prompt is one ``"user"`` message.
    """

    role: Role
    text: str
    id: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    documents: tuple[DocumentView, ...] = ()
    seal: Any = None
    result: Any = None


@dataclass(frozen=True)
class Known:
    """A text of known origin: ``kind`` is source, output, request or template.

    `label` None means the query's label (requests and template literals). `part` is the id of the
    withholdable part it belongs to (sources and outputs)."""

    text: str
    kind: str
    label: Label | None = None
    part: str | None = None


@dataclass(frozen=True)
class Segment:
    """A slice of a message; `part` None means fixed text at the query's label."""

    text: str
    part: str | None = None
    kind: str = "fixed"


@dataclass
class PromptAccount:
    """A prompt split by origin: per message its segments, and the withholdable parts."""

    messages: list[list[Segment]] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    parts: dict[str, LabelledSource] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_part(self, part: str, text: str, label: Label) -> None:
        old = self.parts.get(part)
        if old is not None:  # the same part found twice: keep one, never lower
            assert old.label is not None
            label = old.label.join(label)
            text = join_text(old.text, text)
        self.parts[part] = LabelledSource(part, text, label)

    @property
    def question(self) -> str:
        """The user's request as shown to the scorer (the request texts found, in order)."""
        seen: list[str] = []
        for segs in self.messages:
            seen.extend(s.text.strip() for s in segs if s.kind == "request" and s.text.strip() not in seen)
        if not seen:  # no request located: whatever fixed text the user turns hold
            seen = [s.text.strip() for role, segs in zip(self.roles, self.messages) if role == "user"
                    for s in segs if s.part is None and s.text.strip()]
        return "\n".join(seen) or "(no question)"

    def render(self, withheld: Collection[str]) -> list[str]:
        """Each message's text without the withheld parts; a tool or assistant message that loses
        everything says so, so that the conversation stays valid."""
        out = []
        for role, segs in zip(self.roles, self.messages):
            kept = [s.text for s in segs if s.part is None or s.part not in withheld]
            text = "".join(kept)
            lost = any(s.part in withheld for s in segs if s.part is not None)
            if lost:
                text = re.sub(r"\n{3,}", "\n\n", text)  # no gaps where parts were
                if role in ("tool", "assistant") and not text.strip():
                    text = WITHHELD
            out.append(text)
        return out


def join_text(old: str, piece: str) -> str:
    """The text of a part found again in another piece (the pieces of one part, in order)."""
    return old if piece.strip() in old else f"{old}\n{piece.strip()}"


def _mark(taken: bytearray, text: str, needle: str) -> list[tuple[int, int]]:
    """Every free occurrence of `needle` in `text`, marked as taken."""
    found, start = [], 0
    while (i := text.find(needle, start)) != -1:
        j = i + len(needle)
        if 1 not in taken[i:j]:
            found.append((i, j))
            taken[i:j] = b"\x01" * (j - i)
            start = j
        else:
            start = i + 1
    return found


def locate(text: str, known: Sequence[Known], once: Sequence[Known] = ()) -> list[tuple[str, Known | None]]:
    """`text` cut into (piece, origin) in order: every occurrence of a known text (longest first,
    never overlapping), then each of `once` (a labeller's items) at its first free occurrence
    (longest first), the rest with origin None. An item with no free occurrence is left out
    (`missing_items` tells)."""
    taken = bytearray(len(text))
    spans: list[tuple[int, int, Known]] = []
    for k in sorted(known, key=lambda k: -len(k.text.strip())):
        needle = k.text.strip()
        if needle:
            spans.extend((i, j, k) for i, j in _mark(taken, text, needle))
    for k in sorted(once, key=lambda k: -len(k.text.strip())):
        needle, start = k.text.strip(), 0
        while needle and (i := text.find(needle, start)) != -1:
            j = i + len(needle)
            if 1 not in taken[i:j]:
                taken[i:j] = b"\x01" * (j - i)
                spans.append((i, j, k))
                break
            start = i + 1
    spans.sort(key=lambda s: s[0])
    pieces: list[tuple[str, Known | None]] = []
    at = 0
    for i, j, k in spans:
        if i > at:
            pieces.append((text[at:i], None))
        pieces.append((text[i:j], k))
        at = j
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def missing_items(pieces: Sequence[tuple[str, Known | None]], once: Sequence[Known]) -> list[Known]:
    """The items of `once` that `locate` could not place."""
    placed = {id(k) for _, k in pieces if k is not None}
    return [k for k in once if id(k) not in placed]


def render_tool_calls(content: str, tool_calls: Sequence[Mapping[str, Any]]) -> str:
    """The text scored for an output that calls tools: its content, then each call in plain words.

    Plain words ("Calling send_email with to=...; body=...") rather than JSON: a language model
    scores prose far less noisily than JSON syntax, whose tokens carry no information about the
    sources but add per-token variance.
    """
    return render_call_spans(content, tool_calls)[0]


def render_call_spans(content: str, tool_calls: Sequence[Mapping[str, Any]]
                      ) -> tuple[str, dict[str, tuple[int, int]]]:
    """`render_tool_calls`, with the [start, end) character span of each call's line
    (``"call:<i>"``) and of each argument's value (``"call:<i>:<name>"``) in that text: the spans
    that get labels of their own (per-argument labels)."""
    def value(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)

    head = content.strip()
    lines: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    at = len(head) + 1  # where the next line starts in "\n".join([head, *lines])
    for i, call in enumerate(tool_calls):
        line = f"Calling {call.get('name')} with "
        for n, (k, v) in enumerate((call.get("args") or {}).items()):
            line += ("; " if n else "") + f"{k}="
            start = len(line)
            line += value(v)
            spans[f"call:{i}:{k}"] = (at + start, at + len(line))
        spans[f"call:{i}"] = (at, at + len(line))
        lines.append(line)
        at += len(line) + 1
    full = "\n".join([head, *lines])
    text = full.strip()
    lead = len(full) - len(full.lstrip())
    clipped = {k: (min(max(a - lead, 0), len(text)), min(max(b - lead, 0), len(text))) for k, (a, b) in spans.items()}
    return text, clipped


class Origins(Protocol):
    """What the tracker knows about a run, as `account_prompt` asks for it."""

    top: Label

    def known(self) -> Sequence[Known]:
        """Texts of known origin: sources, earlier outputs, requests, template literals and values."""

    def assistant(self, message: PromptMessage) -> tuple[str, Label]:
        """The part id and recorded label of an earlier answer (⊤ when it is not known)."""

    def tool(self, message: PromptMessage) -> list[tuple[str, str, Label]]:
        """A tool result's pieces covering its text: (piece, part id, label)."""


def _pieces(acc: PromptAccount, m: int, text: str, known: Sequence[Known], residue_fixed: bool,
            top: Label, fixed_kind: str = "fixed") -> list[Segment]:
    segs: list[Segment] = []
    for piece, origin in locate(text, known):
        if origin is None:
            if not piece.strip() or residue_fixed:
                segs.append(Segment(piece, None, fixed_kind if piece.strip() else "fixed"))
            else:
                part = f"unexplained:{m}:{len(acc.parts)}"
                acc.add_part(part, piece.strip(), top)
                segs.append(Segment(piece, part, "unexplained"))
        elif origin.part is None:
            segs.append(Segment(piece, None, origin.kind))
        else:
            assert origin.label is not None
            acc.add_part(origin.part, origin.text.strip(), origin.label)
            segs.append(Segment(piece, origin.part, origin.kind))
    return segs


def _split(acc: PromptAccount, m: int, text: str, requests: Sequence[Known], known: Sequence[Known],
           top: Label) -> list[Segment]:
    """Segments of a user or system text: the user's requests are found first, and inside one,
    what is not a known source is the user's own text; elsewhere, unexplained text is ⊤."""
    segs: list[Segment] = []
    for piece, request in locate(text, requests):
        segs.extend(_pieces(acc, m, piece, known, request is not None, top, "request" if request else "fixed"))
    return segs


def account_prompt(messages: Sequence[PromptMessage], origins: Origins) -> PromptAccount:
    """Split `messages` by origin (see the module docstring)."""
    acc = PromptAccount()
    known = list(origins.known())
    requests = [k for k in known if k.kind == "request"]
    others = [k for k in known if k.kind != "request"]
    calls: dict[str, str] = {}  # tool-call id -> tool name, from the answers that made the calls
    for m, msg in enumerate(messages):
        acc.roles.append(msg.role)
        if msg.role == "assistant":
            part, label = origins.assistant(msg)
            acc.add_part(part, render_tool_calls(msg.text, msg.tool_calls) or "(empty answer)", label)
            acc.messages.append([Segment(msg.text, part, "output")])
            calls.update({str(c["id"]): str(c.get("name")) for c in msg.tool_calls if c.get("id")})
        elif msg.role == "tool":
            answered = calls.get(str(msg.tool_call_id)) if msg.tool_call_id else None
            if answered is None or (msg.tool_name and msg.tool_name != answered):
                # a tool message is bound to the call it answers: one that answers no call of this
                # prompt, or names another tool than that call's, is unexplained text
                part = f"unexplained:{m}:{len(acc.parts)}"
                acc.add_part(part, msg.text.strip() or "(empty tool result)", origins.top)
                acc.notes.append(f"a tool message ({msg.tool_name or '?'}, call {msg.tool_call_id!r}) answers no call "
                                 "of this prompt by that name; treated as ⊤")
                acc.messages.append([Segment(msg.text, part, "unexplained")])
                continue
            segs = []
            for piece, part, label in origins.tool(dataclasses.replace(msg, tool_name=answered)):
                if part and piece.strip():
                    acc.add_part(part, piece.strip(), label)
                    segs.append(Segment(piece, part, "tool"))
                else:
                    segs.append(Segment(piece))
            acc.messages.append(segs)
        else:  # system and user turns: only registered text is fixed (template literals, the
            # application's declared system prompts, the user's request); the rest is ⊤
            acc.messages.append(_split(acc, m, msg.text, requests, others, origins.top))
    return acc


def template_literals(template: str, fmt: str = "f-string") -> list[str]:
    """The literal text of a prompt template (``{name}`` fields for "f-string", ``{{name}}`` for
    "mustache"); another format gives none, so its text stays unexplained (⊤)."""
    if fmt == "f-string":
        try:
            return [lit for lit, *_ in string.Formatter().parse(template) if lit]
        except ValueError:
            return []
    if fmt == "mustache":
        return [p for p in re.split(r"\{\{[^}]*\}\}", template) if p]
    return []
