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

from ._codec import LABEL_KEY, LABEL_PROBLEM_KEY, LabelCodec
from ._errors import (
    CaseFormatError,
    IFCError,
    LatticeError,
    ModelLoadError,
    ScoringError,
    UnknownElementError,
)
from ._lattice import Chain, Label, Lattice, Product, Readers, Tags, lattice_from_spec
from ._model import EMBEDDED_MODEL, embedded_model_path
from ._policy import FlowCheck, IFCViolation, Policy
from ._prompt import ChatPrompt, Prompt
from ._introspection import IntrospectionPropagator, parse_reliance
from ._knn import KNNLMPropagator
from ._knn_store import KNNDatastore
from ._propagators import ConservativePropagator, PermissivePropagator, Propagator
from ._registry import PROPAGATORS, make_propagator, resolve_propagator
from ._record import AuditLog, Candidate, Decision
from .scoring import Generation, HFScorer, MockScorer, Scorer, ScoringRun, VLLMScorer
from ._search import Tolerance
from ._sources import LabelledSource
from ._tracker import FlowTracker, RunState, render_tool_calls

__all__ = [
    "AuditLog",
    "Candidate",
    "CaseFormatError",
    "Chain",
    "ChatPrompt",
    "ConservativePropagator",
    "Decision",
    "EMBEDDED_MODEL",
    "FlowCheck",
    "FlowTracker",
    "Generation",
    "HFScorer",
    "IFCError",
    "IFCViolation",
    "IntrospectionPropagator",
    "KNNDatastore",
    "KNNLMPropagator",
    "LABEL_KEY",
    "LABEL_PROBLEM_KEY",
    "Label",
    "LabelCodec",
    "LabelledSource",
    "Lattice",
    "LatticeError",
    "MockScorer",
    "ModelLoadError",
    "PROPAGATORS",
    "PermissivePropagator",
    "Policy",
    "Product",
    "Prompt",
    "Propagator",
    "Readers",
    "RunState",
    "Scorer",
    "ScoringError",
    "ScoringRun",
    "Tags",
    "Tolerance",
    "UnknownElementError",
    "VLLMScorer",
    "embedded_model_path",
    "lattice_from_spec",
    "make_propagator",
    "parse_reliance",
    "render_tool_calls",
    "resolve_propagator",
]
