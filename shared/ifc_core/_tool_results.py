"""Tool results by origin (the part of `FlowTracker` that labels them; mixed into it).

A tool result is never labelled by its content: its pieces carry the tool's declared label,
the sealed documents of a registered labelled tool keep theirs, a labeller's items theirs, and
every piece joins the label of the call it answers and of the sealed sources it quotes whole.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from ._account import DocumentView, Known, join_text, locate, missing_items
from ._attest import ATTEST_KEY
from ._items import labelled_items
from ._lattice import Label, Lattice
from ._sources import LabelledSource

if TYPE_CHECKING:
    from ._tracker import FlowTracker

__all__ = ["KEEP", "ToolResults"]

KEEP = 256  # texts of known origin kept per run (older ones are forgotten: their text becomes ⊤)


def _quoted(lattice: Lattice, piece: str, sealed: Sequence[LabelledSource]) -> Label:
    """The join of the labels of the sealed sources `piece` quotes whole (a source's label belongs
    to its text: a tool that echoes a sealed document hands back its label too); ⊥ if none."""
    return lattice.join_all(s.label for s in sealed if s.label is not None and s.text in piece)


class ToolResults:
    """Tool results: their pieces by origin, and what the tracker remembers across runs (sealed
    sources, labelled tools, the labels of the calls results answer)."""

    def tool_pieces(self: FlowTracker, tool: str, content: str, result_id: str, documents: Sequence[DocumentView] = (),
                    key: Hashable | None = None, result: Any = None, notes: list[str] | None = None,
                    *, call_label: Label | None = None) -> list[tuple[str, str, Label]]:
        """A tool result split by origin: (text piece, part id, label), covering `content`.

        Documents count only when the tool is a registered labelled tool (a labelled retriever
        tool's own seal, or `Policy.labelled_tools`) and their seals verify; each is joined with
        the tool's declared result label when it has one. When the policy registers a labeller
        for the tool, it labels the structured `result` (or `content` when there is none) item by
        item; each item, found in `content`, is a part of its own (``tool:<tool>:<id>/<path>``).
        If labelling fails (see `_items.py`), no item counts and `notes` gets the reason. The rest
        of the text the model saw carries the declared label (⊤ when undeclared); for a labelled
        tool, whose declared label is a floor for its documents and never a substitute for them,
        the rest is ⊤, and it is joined with the labels of its documents that the text does not
        show verbatim. Every piece is joined with the label of the call it answers, when known: a
        tool's result depends on the arguments it was given.
        """
        declared = self.policy.declared_result(tool)
        fallback = declared if declared is not None else self.lattice.top
        channels = self.policy.labelled_channels(tool)
        # the label of the call this result answers: as recorded, and as the prompt's answer that made it
        # shows it (its recorded or sealed label, ⊤ when unknown: a thread resumed in another process)
        call = self.label_of_answered_call(result_id, key)
        floor = self.lattice.join_all(x for x in (call, call_label) if x is not None)
        known = []
        for doc in documents:
            source, problem, sealed = self.provenance.document(doc, channels)
            if sealed and problem is None and source.label is not None:
                self._remember_sealed(source)
                label = source.label if declared is None else source.label.join(declared)
                known.append(Known(source.text, "source", label, source.id))
        # a result whose documents carry seals is a labelled tool's, verified or not (a seal that fails, in
        # another process say, is no reason to trust the rest of its text more), and so is a tool seen
        # returning verified documents before
        claims = any(ATTEST_KEY in (d.metadata or {}) for d in documents)
        labelled = self._was_labelled(tool, bool(known)) or claims or tool in self.policy.labelled_tools
        rest_label = self.lattice.top if labelled or declared is None else declared
        rest = f"tool:{tool}:{result_id}"
        labeller, items = self.policy.labeller(tool), []
        if labeller is not None:
            items, problem = labelled_items(labeller, content if result is None else result, content, self.lattice, rest)
            if problem is not None and notes is not None:
                notes.append(f"{rest}: {problem}; the whole result carries its fallback label {fallback}")
        located = locate(content, known, items)
        if missing_items(located, items):  # an item's only occurrences are inside others: fail closed
            if notes is not None:
                notes.append(f"{rest}: an item of the labeller could not be placed apart from the others; the whole "
                             f"result carries its fallback label {fallback}")
            located = locate(content, known)
        pieces, shown = [], set()
        for piece, origin in located:
            if origin is not None:
                assert origin.label is not None and origin.part is not None
                pieces.append((piece, origin.part, origin.label))
                shown.add(origin.part)
            else:
                pieces.append((piece, "", rest_label))
        unshown = self.lattice.join_all(k.label for k in known if k.part not in shown and k.label is not None)
        sealed = [s for s in self.sealed_sources() if s.label is not None and s.text.strip()]
        return [(piece, part or (rest if piece.strip() else ""),
                 (label if part else label.join(unshown)).join(floor).join(_quoted(self.lattice, piece, sealed)))
                for piece, part, label in pieces]

    def _remember_sealed(self: FlowTracker, source: LabelledSource) -> None:
        """A sealed source's label belongs to its text, in any run: found in later prompts too."""
        with self._lock:
            old = self._sealed.get(source.text)
            if old is not None and old.label is not None and source.label is not None:
                source = LabelledSource(old.id, source.text, old.label.join(source.label))
            self._sealed.put(source.text, source)

    def sealed_sources(self: FlowTracker) -> list[LabelledSource]:
        """The sealed sources this tracker remembers across runs (newest last)."""
        with self._lock:
            return list(self._sealed.values())

    def _was_labelled(self: FlowTracker, tool: str, now: bool) -> bool:
        """Whether `tool` has returned sealed documents in this tracker (remembered from now on)."""
        with self._lock:
            if now:
                self._labelled_tools.put(tool, True)
            return tool in self._labelled_tools

    def label_of_answered_call(self: FlowTracker, call_id: str | None, key: Hashable | None = None) -> Label | None:
        """The label of the output that made call `call_id`: in run `key` when it has it, else in
        any run this tracker recorded (None when unknown)."""
        if not call_id:
            return None
        st = self.get(key) if key is not None else None
        if st is not None:
            with st.lock:
                entry = st.by_tool_call.get(str(call_id))
            if entry is not None:
                return entry[2].label
        with self._lock:
            return self._call_labels.get(str(call_id))

    def add_tool_result(self: FlowTracker, key: Hashable, tool: str, content: str, result_id: str,
                        documents: Sequence[DocumentView] = (), result: Any = None) -> list[LabelledSource]:
        """A tool's result, by origin (see `tool_pieces`): never labelled by its content. `result`
        is the tool's structured result, for the policy's labeller (kept for later prompts that
        show the result without it)."""
        st = self.state(key)
        keep = result if self.policy.labeller(tool) is not None else None
        with st.lock:
            st.tool_results[str(result_id)] = (tool, tuple(documents), keep)
            while len(st.tool_results) > KEEP:
                st.tool_results.pop(next(iter(st.tool_results)))
        notes: list[str] = []
        parts: dict[str, tuple[str, Label]] = {}  # one source per part (the pieces of a part joined)
        for piece, part, label in self.tool_pieces(tool, content, str(result_id), documents, key, result, notes):
            if part:
                old = parts.get(part)
                parts[part] = (piece.strip(), label) if old is None else (join_text(old[0], piece), old[1].join(label))
        with st.lock:
            for note in notes:
                st.notes[f"tool:{tool}:{result_id}"] = note
            while len(st.notes) > KEEP:
                st.notes.pop(next(iter(st.notes)))
        return [self.add_source(key, LabelledSource(part, text, label)) for part, (text, label) in parts.items()]
