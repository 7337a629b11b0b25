"""Translation between LangChain objects and the engine's (no rules here)."""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, HumanMessage

from ifc_core import LABEL_PROBLEM_KEY, LabelCodec, LabelledSource


def document_source(doc: Document, codec: LabelCodec) -> tuple[LabelledSource, bool]:
    """A retrieved document as a labelled source; (source, True) when its label was missing."""
    label = codec.decode(doc.metadata)
    doc_id = doc.id or hashlib.sha256(doc.page_content.encode()).hexdigest()[:16]
    missing = label is None or LABEL_PROBLEM_KEY in doc.metadata  # flagged upstream by IFCRetriever
    return LabelledSource(str(doc_id), doc.page_content, codec.lattice.top if missing else label), missing


def text_of(content: Any) -> str:
    """Plain text of a message's content (str or content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                         if isinstance(b, (str, Mapping)))
    return str(content)


def question_of(inputs: Any) -> str:
    """The user's request in a run's input (a string, a messages dict, or a dict of strings)."""
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, BaseMessage):
        return text_of(inputs.content)
    if isinstance(inputs, Mapping):
        messages = inputs.get("messages")
        if isinstance(messages, Sequence) and not isinstance(messages, str):
            humans = [m for m in messages if isinstance(m, HumanMessage)
                      or (isinstance(m, Mapping) and m.get("role") in ("user", "human"))]
            return "\n".join(text_of(m.content if isinstance(m, BaseMessage) else m.get("content", ""))
                             for m in humans)
        return "\n".join(v for v in inputs.values() if isinstance(v, str))
    return ""


def run_key(metadata: Mapping[str, Any] | None, root: Hashable) -> Hashable:
    """State is kept per conversation thread when there is one, else per root run."""
    thread = (metadata or {}).get("thread_id")
    return ("thread", str(thread)) if thread is not None else root
