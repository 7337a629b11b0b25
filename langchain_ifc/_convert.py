"""Translation between LangChain objects and the engine's (no rules here)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from ifc_core import IFC_META_KEY, WITHHELD, DocumentView, PromptMessage, template_literals

_PROMPT_TEMPLATES = {"ChatPromptTemplate", "PromptTemplate", "FewShotChatMessagePromptTemplate"}


def as_document(obj: Any) -> Document | None:
    """A `Document`, also one serialised by a checkpointer into a dict; None for anything else."""
    if isinstance(obj, Document):
        return obj
    if isinstance(obj, Mapping) and obj.get("type") == "Document" and isinstance(obj.get("page_content"), str):
        meta = obj.get("metadata")
        return Document(obj["page_content"], metadata=dict(meta) if isinstance(meta, Mapping) else {},
                        id=obj.get("id") if isinstance(obj.get("id"), str) else None)
    return None


def document_view(doc: Document) -> DocumentView:
    doc_id = doc.id or hashlib.sha256(doc.page_content.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return DocumentView(str(doc_id), doc.page_content, dict(doc.metadata or {}))


def artifact_documents(artifact: Any) -> tuple[DocumentView, ...]:
    """The documents a tool message carries in its artifact (none unless every item is one)."""
    if not isinstance(artifact, (list, tuple)) or not artifact:
        return ()
    docs = [as_document(a) for a in artifact]
    return tuple(document_view(d) for d in docs if d is not None) if all(docs) else ()


def tool_output(output: Any) -> tuple[str, Any, tuple[DocumentView, ...]]:
    """What a tool returned, as (text the model sees, structured result for the policy's
    labeller, labelled documents): a `ToolMessage` (its artifact is the structured result, as with
    ``content_and_artifact``; a structured return is already JSON text in its content), or the
    tool's own return value when it was called without a tool call."""
    if isinstance(output, ToolMessage):
        return text_of(output.content), output.artifact, artifact_documents(output.artifact)
    if isinstance(output, str) or _is_blocks(output):
        return text_of(output), None, ()
    return str(output), output, ()


def _is_blocks(content: Any) -> bool:
    return isinstance(content, list) and all(isinstance(b, str) or (isinstance(b, Mapping) and "type" in b)
                                             for b in content)


def text_of(content: Any) -> str:
    """All of a message's content as text, as the model sees it: a string as it is; a text block
    as its text; any other block (JSON, a search result, an image, a file, reasoning) as canonical
    JSON, so that nothing a model sees escapes the account."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(_block_text(b) for b in content)
    return _block_text(content)


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, Mapping) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return block["text"]
    return json.dumps(block, sort_keys=True, ensure_ascii=False, default=str)


def prompt_message(m: BaseMessage) -> PromptMessage:
    """A LangChain message as the engine's `PromptMessage`."""
    text = text_of(m.content)
    if isinstance(m, ToolMessage):
        return PromptMessage("tool", text, id=m.id, tool_name=m.name or "unknown", tool_call_id=m.tool_call_id,
                             documents=artifact_documents(m.artifact), result=m.artifact)
    if isinstance(m, AIMessage):
        return PromptMessage("assistant", text, id=m.id, tool_calls=tuple(m.tool_calls or ()),
                             seal=(m.response_metadata or {}).get(IFC_META_KEY))
    if isinstance(m, SystemMessage):
        return PromptMessage("system", text, id=m.id)
    return PromptMessage("user", text, id=m.id)  # human, and any other kind: the strict rules


def prompt_messages(messages: Sequence[BaseMessage]) -> list[PromptMessage]:
    return [prompt_message(m) for m in messages]


def with_text(m: BaseMessage, text: str) -> BaseMessage:
    """`m` with its content replaced (for a regeneration without withheld parts). A withheld
    answer keeps its tool calls, so that the conversation stays valid, with their arguments
    withheld too."""
    if text == text_of(m.content):
        return m
    update: dict[str, Any] = {"content": text}
    if isinstance(m, AIMessage) and text == WITHHELD and m.tool_calls:
        update["tool_calls"] = [{**c, "args": {k: WITHHELD for k in c.get("args", {})}} for c in m.tool_calls]
    return m.model_copy(update=update)


def _role(m: Any) -> str | None:
    if isinstance(m, BaseMessage):
        return "user" if isinstance(m, HumanMessage) else m.type
    if isinstance(m, Mapping):
        return "user" if m.get("role") in ("user", "human") else str(m.get("role"))
    if isinstance(m, (tuple, list)) and len(m) == 2 and isinstance(m[0], str):
        return "user" if m[0] in ("user", "human") else m[0]
    return None


def _content(m: Any) -> Any:
    if isinstance(m, BaseMessage):
        return m.content
    if isinstance(m, Mapping):
        return m.get("content", "")
    return m[1]


def request_texts(inputs: Any) -> list[str]:
    """The texts the user authored in a run's input: a string, the user turns of a message list,
    and the string values of an input dict (other roles' messages are not the user's)."""
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, BaseMessage):
        return [text_of(inputs.content)] if isinstance(inputs, HumanMessage) else []
    if isinstance(inputs, Mapping):
        texts: list[str] = []
        for value in inputs.values():
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, Sequence):
                texts.extend(text_of(_content(m)) for m in value if _role(m) == "user")
        return texts
    if isinstance(inputs, Sequence):
        return [text_of(_content(m)) for m in inputs if _role(m) == "user"]
    return []


def _template_strings(node: Any) -> list[tuple[str, str]]:
    """(template, format) of every message template in a serialised prompt template."""
    found: list[tuple[str, str]] = []
    if isinstance(node, Mapping):
        kwargs = node.get("kwargs") if isinstance(node.get("kwargs"), Mapping) else {}
        if isinstance(kwargs.get("template"), str):
            found.append((kwargs["template"], str(kwargs.get("template_format", "f-string"))))
        for value in node.values():
            found.extend(_template_strings(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_template_strings(value))
    return found


def prompt_template_literals(serialized: Any, name: str | None) -> list[str] | None:
    """The literal text of a prompt template run (None when the run is not a prompt template).

    Only f-string and mustache templates are read; a template of another format gives no
    literals, so its text counts as unexplained (⊤)."""
    ids = serialized.get("id") if isinstance(serialized, Mapping) else None
    kind = ids[-1] if isinstance(ids, list) and ids else name
    if kind not in _PROMPT_TEMPLATES:
        return None
    return [lit for template, fmt in _template_strings(serialized) for lit in template_literals(template, fmt)]


def run_key(metadata: Mapping[str, Any] | None, root: Hashable) -> Hashable:
    """State is kept per conversation thread when there is one, else per root run."""
    thread = (metadata or {}).get("thread_id")
    return ("thread", str(thread)) if thread is not None else root
