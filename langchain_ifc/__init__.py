"""LangChain adapter for llm-ifc: labels for the chains and agents you already have.

- `IFCCallbackHandler` / `ifc_session`: label every LLM output of a run; block tool calls whose
  input may not flow to the tool (``config={"callbacks": [handler]}``).
- `IFCRetriever`: labelled, clearance-filtered retrieval (e.g. over langchain-chroma).
- `IFCMiddleware`: per-call checks for LangChain v1 ``create_agent`` (block, raise or interrupt).
- `guard_tool`: a checked `BaseTool` for chains and ``ToolNode``.
- `IFCChatModel`: enforce mode; answers regenerated from only the admitted sources.

The rules live in the engine, `ifc_core`; this package only translates.
"""

from ifc_core import IFCViolation, Policy

from ._callback import IFCCallbackHandler, ifc_session
from ._chat_model import IFCChatModel
from ._middleware import IFCMiddleware
from ._retriever import IFCRetriever, labelled_retriever_tool
from ._models import embedded_chat_model
from ._tools import GuardedTool, guard_tool, guard_tools

__all__ = [
    "GuardedTool",
    "IFCCallbackHandler",
    "IFCChatModel",
    "IFCMiddleware",
    "IFCRetriever",
    "IFCViolation",
    "Policy",
    "embedded_chat_model",
    "guard_tool",
    "guard_tools",
    "ifc_session",
    "labelled_retriever_tool",
]
