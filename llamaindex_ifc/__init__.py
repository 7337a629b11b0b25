"""LlamaIndex adapter for llm-ifc: labels for the query engines and agents you already have.

- `IFCEventHandler`: labels every LLM output of a run through the instrumentation dispatcher
  (observe only: the dispatcher swallows handler exceptions, so it cannot block).
- `IFCRetriever` / `IFCNodePostprocessor`: labelled, clearance-filtered nodes, label keys hidden
  from the LLM and the embedder; `labelled_retriever_tool` keeps the nodes' labels for the handler.
- `guard_tool`: a checked tool (``on_violation="error" | "approve" | "cancel"``) and
  `raise_on_violation` for a hard stop.
- `IFCLLM`: enforce mode; answers regenerated from only the admitted sources.

The rules live in `ifc_core`; this package only translates.
"""

from ifc_core import IFCViolation, Policy

from ._events import ANSWER_KEY, IFCEventHandler
from ._llm import IFCLLM
from ._retriever import IFCLabelledNodes, IFCNodePostprocessor, IFCRetriever, MiniLMEmbedModel, labelled_retriever_tool
from ._models import embedded_llm
from ._tools import (IFCApprovalRequired, IFCApprovalResponse, IFCViolationEvent, guard_tool, guard_tools,
                     raise_on_violation)

__all__ = [
    "ANSWER_KEY",
    "IFCApprovalRequired",
    "IFCApprovalResponse",
    "IFCEventHandler",
    "IFCLLM",
    "IFCLabelledNodes",
    "IFCNodePostprocessor",
    "IFCRetriever",
    "IFCViolation",
    "IFCViolationEvent",
    "MiniLMEmbedModel",
    "Policy",
    "embedded_llm",
    "guard_tool",
    "guard_tools",
    "labelled_retriever_tool",
    "raise_on_violation",
]
