"""llm-ifc's engine: information-flow labels for LLM outputs, framework-free.

    from ifc_core import Chain, LabelledSource, HFScorer, PermissivePropagator

    conf = Chain(["public", "internal", "secret"])
    prop = PermissivePropagator(HFScorer.load())          # embedded SmolLM2, CPU or CUDA
    # or a vLLM server: PermissivePropagator(VLLMScorer("http://127.0.0.1:8011/v1", model="smollm2"))
    d = prop.label(LabelledSource("q", "Who founded Acme?", conf.label("public")),
                   [LabelledSource("faq", "Acme was founded by Ada.", conf.label("public")),
                    LabelledSource("pay", "Ada earns 1M.", conf.label("secret"))],
                   "Acme was founded by Ada.")
    d.label, d.conservative_label   # public, secret
"""

from ._approval import DECISIONS, Review, approval_request, call_digest, read_review
from ._account import (WITHHELD, DocumentView, PromptAccount, PromptMessage, render_call_spans, render_tool_calls,
                       template_literals)
from ._attest import ATTEST_KEY, KEY_ENV, MAC_KEY, Attestor, RecordSeal, Signer, digest
from ._codec import LABEL_KEY, LABEL_PROBLEM_KEY, LabelCodec
from ._errors import (
    AuditError,
    CaseFormatError,
    ConfigurationError,
    ConfigurationTypeError,
    IFCError,
    IFCViolation,
    LatticeError,
    ModelLoadError,
    ScoringError,
    SearchBudgetError,
    UnknownElementError,
)
from ._gate import RETRIEVER_CHANNEL, Admitted, Provenance, RetrievalGate
from ._introspection import IntrospectionPropagator, parse_reliance
from ._items import Item, Labeller, PerItem
from ._knn import KNNLMPropagator
from ._knn_store import KNNDatastore
from ._labelling import IFC_META_KEY
from ._lattice import Chain, Label, Lattice, Product, Readers, Tags, as_label, lattice_from_spec
from ._model import EMBEDDED_MODEL, embedded_model_path
from ._policy import FlowCheck, Policy
from ._prompt import DEFAULT_SYSTEM, ChatPrompt, Prompt
from ._conservative import ConservativePropagator
from ._inputs import DecisionInputs
from ._permissive import PermissivePropagator
from ._propagators import Propagator
from ._record import AuditLog, Candidate, Decision
from ._registry import PROPAGATORS, make_propagator, resolve_propagator
from .scoring import Generation, HFScorer, MockScorer, Scorer, ScoringRun, VLLMScorer
from ._search import SearchBudget, Tolerance
from ._sources import LabelledSource
from ._telemetry import LOGGER_NAME
from ._tracker import FlowTracker, RunState

__all__ = [
    "ATTEST_KEY",
    "Admitted",
    "Attestor",
    "AuditError",
    "AuditLog",
    "Candidate",
    "CaseFormatError",
    "Chain",
    "ChatPrompt",
    "ConfigurationError",
    "ConfigurationTypeError",
    "ConservativePropagator",
    "DECISIONS",
    "DEFAULT_SYSTEM",
    "Decision",
    "DecisionInputs",
    "DocumentView",
    "EMBEDDED_MODEL",
    "FlowCheck",
    "FlowTracker",
    "Generation",
    "HFScorer",
    "IFCError",
    "IFCViolation",
    "IFC_META_KEY",
    "IntrospectionPropagator",
    "Item",
    "KEY_ENV",
    "KNNDatastore",
    "KNNLMPropagator",
    "LABEL_KEY",
    "LABEL_PROBLEM_KEY",
    "LOGGER_NAME",
    "Label",
    "LabelCodec",
    "LabelledSource",
    "Labeller",
    "Lattice",
    "LatticeError",
    "MAC_KEY",
    "MockScorer",
    "ModelLoadError",
    "PROPAGATORS",
    "PerItem",
    "PermissivePropagator",
    "Policy",
    "Product",
    "Prompt",
    "PromptAccount",
    "PromptMessage",
    "Propagator",
    "Provenance",
    "RETRIEVER_CHANNEL",
    "Readers",
    "RecordSeal",
    "RetrievalGate",
    "Review",
    "RunState",
    "Scorer",
    "ScoringError",
    "ScoringRun",
    "SearchBudget",
    "SearchBudgetError",
    "Signer",
    "Tags",
    "Tolerance",
    "UnknownElementError",
    "VLLMScorer",
    "WITHHELD",
    "approval_request",
    "as_label",
    "call_digest",
    "digest",
    "embedded_model_path",
    "lattice_from_spec",
    "make_propagator",
    "parse_reliance",
    "read_review",
    "render_call_spans",
    "render_tool_calls",
    "resolve_propagator",
    "template_literals",
]
