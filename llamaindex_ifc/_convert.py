"""Translation between LlamaIndex objects and the engine's (no rules here)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, TextNode

from llama_index.core.agent.react.formatter import get_react_tool_descriptions

from ifc_core import IFC_META_KEY, WITHHELD, DocumentView, PromptMessage, template_literals

_ROLES = {"system": "system", "developer": "system", "assistant": "assistant", "model": "assistant",
          "chatbot": "assistant", "tool": "tool", "function": "tool"}


def node_view(node: BaseNode | NodeWithScore) -> DocumentView:
    node = node.node if isinstance(node, NodeWithScore) else node
    return DocumentView(node.node_id, node.get_content(MetadataMode.NONE), dict(node.metadata or {}))


def labelled_node(node: NodeWithScore, metadata: dict[str, Any]) -> NodeWithScore:
    """A copy of `node` carrying `metadata`, with the label keys hidden from the LLM and the
    embedder (LlamaIndex writes node metadata into prompts otherwise)."""
    inner = node.node.model_copy(deep=True)
    inner.metadata = dict(metadata)
    for keys in (inner.excluded_llm_metadata_keys, inner.excluded_embed_metadata_keys):
        keys.extend(k for k in metadata if str(k).startswith("ifc_") and k not in keys)
    return NodeWithScore(node=inner, score=node.score)


def message_text(message: ChatMessage) -> str:
    """All of a message's content as text, as the model sees it: text blocks as their text, any
    other block (a document, a citation, an image, reasoning) as canonical JSON; tool calls are
    the message's calls, not its text."""
    parts = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            continue
        text = getattr(block, "text", None) if type(block).__name__ == "TextBlock" else None
        parts.append(text if isinstance(text, str) else json.dumps(
            block.model_dump(mode="json", exclude_none=True), sort_keys=True, ensure_ascii=False, default=str))
    return "\n".join(parts) if parts else (message.content or "")


def tool_calls_of(message: ChatMessage) -> list[dict[str, Any]]:
    return [{"name": b.tool_name, "args": b.tool_kwargs, "id": b.tool_call_id}
            for b in message.blocks if isinstance(b, ToolCallBlock)]


def prompt_messages(messages: Sequence[ChatMessage]) -> list[PromptMessage]:
    """LlamaIndex chat messages as the engine's `PromptMessage`s (a tool message gets the name of
    the call it answers, from the assistant message that made it)."""
    names: dict[str, str] = {}
    out = []
    for m in messages:
        role = _ROLES.get(str(getattr(m.role, "value", m.role)), "user")
        text = message_text(m)
        if role == "assistant":
            calls = tool_calls_of(m)
            names.update({str(c["id"]): c["name"] for c in calls if c.get("id")})
            out.append(PromptMessage("assistant", text, id=m.additional_kwargs.get("id"), tool_calls=tuple(calls),
                                     seal=m.additional_kwargs.get(IFC_META_KEY)))
        elif role == "tool":
            call_id = m.additional_kwargs.get("tool_call_id")
            out.append(PromptMessage("tool", text, tool_call_id=call_id,
                                     tool_name=m.additional_kwargs.get("name") or names.get(str(call_id))))
        else:
            out.append(PromptMessage(role, text))  # type: ignore[arg-type]
    return out


def with_text(m: ChatMessage, text: str) -> ChatMessage:
    """`m` with its text replaced, its tool calls kept (for a regeneration without withheld parts)."""
    if text == (m.content or ""):
        return m
    from llama_index.core.base.llms.types import TextBlock

    blocks = [b for b in m.blocks if isinstance(b, ToolCallBlock)]
    if text == WITHHELD:  # a withheld answer keeps its calls (the conversation stays valid), not their arguments
        blocks = [b.model_copy(update={"tool_kwargs": {k: WITHHELD for k in (b.tool_kwargs or {})}}
                               if isinstance(b.tool_kwargs, dict) else {"tool_kwargs": {}}) for b in blocks]
    return m.model_copy(update={"blocks": [TextBlock(text=text), *blocks]})


def text_node(id: str, text: str, metadata: dict[str, Any]) -> NodeWithScore:
    return NodeWithScore(node=TextNode(id_=id, text=text, metadata=metadata), score=None)


OBSERVATION = "Observation: "  # how ReAct agents show a tool's result back to the model


def react_action(text: str) -> tuple[str, list[dict[str, Any]], str | None]:
    """A ReAct step ("Thought: ... Action: tool / Action Input: {...}") as its thought, its tool
    call (scored in the same plain words as a function call) and the text the agent will show
    for it in later prompts; for any other text, (text, [], None)."""
    from llama_index.core.agent.react.output_parser import ReActOutputParser
    from llama_index.core.agent.react.types import ActionReasoningStep

    try:
        step = ReActOutputParser().parse(text)
    except Exception:  # not a ReAct action: score the text as it is
        return text, [], None
    if isinstance(step, ActionReasoningStep):
        return step.thought, [{"name": step.action, "args": step.action_input}], step.get_content()
    return text, [], None


def prompt_literals(template: Any) -> list[str]:
    """The literal text of a string or LlamaIndex prompt template."""
    if isinstance(template, str):
        return template_literals(template)
    if hasattr(template, "default_template"):
        return prompt_literals(template.default_template)
    if hasattr(template, "message_templates"):
        return [lit for m in template.message_templates if m.content for lit in template_literals(m.content)]
    return template_literals(template.template) if isinstance(getattr(template, "template", None), str) else []


def application_texts(instance: Any) -> list[str]:
    """The fixed text an agent or chat engine writes into its prompts, read from the object the
    application built: system prompts, a ReAct header as rendered with the agent's tools (their
    names and descriptions are the application's, as in a function-calling request), prompt
    templates' literals. An agent workflow's agents each count."""
    texts: list[str] = []
    for agent in [instance, *(getattr(instance, "agents", None) or {}).values()]:
        for attr in ("system_prompt", "_system_prompt"):
            if isinstance(getattr(agent, attr, None), str):
                texts.append(getattr(agent, attr))
        formatter = getattr(agent, "formatter", None)
        header = getattr(formatter, "system_header", None)
        if isinstance(header, str):
            texts += template_literals(header) + [getattr(formatter, "context", "") or ""]
            tools = [t for t in getattr(agent, "tools", None) or [] if hasattr(t, "metadata")]
            texts += get_react_tool_descriptions(tools) + [", ".join(t.metadata.get_name() for t in tools)]
        for attr in ("state_prompt", "_context_template", "_context_prompt_template", "_condense_prompt_template"):
            if getattr(agent, attr, None) is not None:
                texts += prompt_literals(getattr(agent, attr))
        for m in getattr(agent, "_prefix_messages", None) or []:
            if str(getattr(m.role, "value", m.role)) == "system":
                texts.append(message_text(m))
    return [t for t in texts if isinstance(t, str) and t.strip()]
