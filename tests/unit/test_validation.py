"""Bad input to the engine's constructors and functions (issue 12): each is refused up front with an
`IFCError` whose message starts with the field, and names the fix (no model: MockScorer)."""

import numpy as np
import pytest

from ifc_core import (
    Attestor, AuditLog, Chain, ChatPrompt, ConfigurationError, ConfigurationTypeError, ConservativePropagator,
    FlowTracker, HFScorer, IFCError, IntrospectionPropagator, KNNLMPropagator, LabelCodec, LabelledSource,
    LatticeError, MockScorer, PermissivePropagator, Policy, Product, Readers, RecordSeal, RetrievalGate,
    SearchBudget, Signer, Tags, Tolerance, as_label, digest, make_propagator, parse_reliance, resolve_propagator)
from ifc_core._tolerance import ContentCopyGuard, ContentGuard, CopyGuard

CONF = Chain(["public", "internal", "secret"])
SCORER = MockScorer(lambda context, output: -0.1, reply=lambda context: "Zelbrook.")
Q = LabelledSource("q", "Where?", CONF.label("public"))
DOCS = [LabelledSource("d1", "Zelbrook.", CONF.label("secret"))]
KEY = Signer(b"k" * 32)
TYPE, VALUE = ConfigurationTypeError, ConfigurationError


def refused(call, error, field):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, IFCError) and isinstance(info.value, (ValueError, TypeError))
    assert str(info.value).startswith(field), str(info.value)
    return str(info.value)


CASES = {
    # lattices
    "Chain of a string": (lambda: Chain("public"), LatticeError, "levels"),
    "Chain of a set": (lambda: Chain({"public", "secret"}), LatticeError, "levels"),
    "Chain of None": (lambda: Chain(None), LatticeError, "levels"),
    "Chain of nothing": (lambda: Chain([]), LatticeError, "levels"),
    "Chain of a number level": (lambda: Chain(["public", 2]), LatticeError, "levels"),
    "Readers of a string": (lambda: Readers("alice"), LatticeError, "principals"),
    "Tags of a string": (lambda: Tags("hr"), LatticeError, "tags"),
    "Product of a string": (lambda: Product(conf="public"), LatticeError, "components.conf"),
    "label compared with a str": (lambda: CONF.label("public") <= "public", TYPE, "label"),
    "rank of a str": (lambda: CONF.rank("public"), LatticeError, "label"),
    "as_label of a number": (lambda: as_label(CONF, 3, "clearance"), LatticeError, "clearance"),
    "as_label of an unknown level": (lambda: as_label(CONF, "top", "clearance"), LatticeError, "clearance"),
    # the tolerance and its criteria
    "Tolerance lam str": (lambda: Tolerance(lam="0.5"), TYPE, "Tolerance.lam"),
    "Tolerance lam bool": (lambda: Tolerance(lam=True), TYPE, "Tolerance.lam"),
    "Tolerance lam negative": (lambda: Tolerance(lam=-1), VALUE, "Tolerance.lam"),
    "Tolerance lam inf": (lambda: Tolerance(lam=float("inf")), VALUE, "Tolerance.lam"),
    "Tolerance guard str": (lambda: Tolerance(max_token_increase="2"), TYPE, "Tolerance.max_token_increase"),
    "Tolerance guard negative": (lambda: Tolerance(max_token_increase=-1), VALUE, "Tolerance.max_token_increase"),
    "ContentGuard lam": (lambda: ContentGuard(lam=-0.1), VALUE, "ContentGuard.lam"),
    "CopyGuard copy_increase": (lambda: CopyGuard(copy_increase=-0.5), VALUE, "CopyGuard.copy_increase"),
    "ContentCopyGuard copy_increase": (lambda: ContentCopyGuard(copy_increase="x"), TYPE,
                                       "ContentCopyGuard.copy_increase"),
    "Tolerance.of a str": (lambda: Tolerance.of("0.5"), TYPE, "tolerance"),
    "Tolerance.named a number": (lambda: Tolerance.named(3), VALUE, "criterion"),
    "Tolerance.named unknown": (lambda: Tolerance.named("nope"), VALUE, "criterion"),
    # the search budget
    "budget max_candidates 0": (lambda: SearchBudget(max_candidates=0), VALUE, "SearchBudget.max_candidates"),
    "budget max_candidates None": (lambda: SearchBudget(max_candidates=None), TYPE, "SearchBudget.max_candidates"),
    "budget max_scored float": (lambda: SearchBudget(max_scored=1.5), TYPE, "SearchBudget.max_scored"),
    "budget seconds 0": (lambda: SearchBudget(seconds=0), VALUE, "SearchBudget.seconds"),
    "budget seconds bool": (lambda: SearchBudget(seconds=True), TYPE, "SearchBudget.seconds"),
    "SearchBudget.of a dict": (lambda: SearchBudget.of({"max_scored": 3}), TYPE, "budget"),
    # propagators
    "permissive without scorer": (lambda: PermissivePropagator(None), VALUE, "PermissivePropagator.scorer"),
    "permissive with a scorer class": (lambda: PermissivePropagator(HFScorer), TYPE, "PermissivePropagator.scorer"),
    "permissive with a str scorer": (lambda: PermissivePropagator("smollm2"), TYPE, "PermissivePropagator.scorer"),
    "permissive tolerance str": (lambda: PermissivePropagator(SCORER, tolerance="0.5"), TYPE, "tolerance"),
    "permissive tolerance negative": (lambda: PermissivePropagator(SCORER, tolerance=-1), VALUE, "tolerance"),
    "permissive max_candidates 0": (lambda: PermissivePropagator(SCORER, max_candidates=0), VALUE, "max_candidates"),
    "permissive doc_order": (lambda: PermissivePropagator(SCORER, doc_order="random"), VALUE, "doc_order"),
    "permissive budget int": (lambda: PermissivePropagator(SCORER, budget=5), TYPE, "budget"),
    "permissive lattice list": (lambda: PermissivePropagator(SCORER, lattice=["public"]), TYPE, "lattice"),
    "permissive prompt str": (lambda: PermissivePropagator(SCORER, prompt="Answer:"), TYPE, "prompt"),
    "conservative str scorer": (lambda: ConservativePropagator("smollm2"), TYPE, "ConservativePropagator.scorer"),
    "knnlm without scorer": (lambda: KNNLMPropagator(None), VALUE, "KNNLMPropagator.scorer"),
    "knnlm alpha str": (lambda: KNNLMPropagator(SCORER, alpha="0.5"), TYPE, "alpha"),
    "knnlm alpha 1": (lambda: KNNLMPropagator(SCORER, alpha=1.0), VALUE, "alpha"),
    "knnlm generation_alpha 0": (lambda: KNNLMPropagator(SCORER, generation_alpha=0), VALUE, "generation_alpha"),
    "knnlm k 0": (lambda: KNNLMPropagator(SCORER, k=0), VALUE, "k"),
    "knnlm k float": (lambda: KNNLMPropagator(SCORER, k=1.5), TYPE, "k"),
    "knnlm temperature 0": (lambda: KNNLMPropagator(SCORER, temperature=0), VALUE, "temperature"),
    "knnlm generation_temperature": (lambda: KNNLMPropagator(SCORER, generation_temperature=-1), VALUE,
                                     "generation_temperature"),
    "knnlm datastore str": (lambda: KNNLMPropagator(SCORER, datastore="store/"), TYPE, "datastore"),
    "knnlm max_candidates 0": (lambda: KNNLMPropagator(SCORER, max_candidates=0), VALUE, "max_candidates"),
    "knnlm tolerance str": (lambda: KNNLMPropagator(SCORER, tolerance="0.2"), TYPE, "tolerance"),
    "introspection without scorer": (lambda: IntrospectionPropagator(None), VALUE, "IntrospectionPropagator.scorer"),
    "introspection max_reply_tokens": (lambda: IntrospectionPropagator(SCORER, max_reply_tokens=0), VALUE,
                                       "max_reply_tokens"),
    # label() and enforce()
    "label a str query": (lambda: PermissivePropagator(SCORER).label("Where?", DOCS, "x"), TYPE, "query"),
    "label a str of documents": (lambda: PermissivePropagator(SCORER).label(Q, "Zelbrook.", "x"), TYPE, "documents"),
    "label a str document": (lambda: PermissivePropagator(SCORER).label(Q, ["Zelbrook."], "x"), TYPE, "documents[0]"),
    "label a None output": (lambda: PermissivePropagator(SCORER).label(Q, DOCS, None), TYPE, "output"),
    "label an iterator output": (lambda: PermissivePropagator(SCORER).label(Q, DOCS, iter([1, 2])), TYPE, "output"),
    "label ids with a str": (lambda: PermissivePropagator(SCORER).label(Q, DOCS, [1, "a"]), TYPE, "output"),
    "label a number id": (lambda: PermissivePropagator(SCORER).label(Q, DOCS, "x", id=3), TYPE, "id"),
    "conservative label bytes": (lambda: ConservativePropagator().label(Q, DOCS, b"x"), TYPE, "output"),
    "nothing labelled, no lattice": (lambda: ConservativePropagator().label(LabelledSource("q", "?"), [], "x"),
                                     VALUE, "lattice"),
    "enforce max_new_tokens -5": (lambda: PermissivePropagator(SCORER).enforce(Q, DOCS, max_new_tokens=-5), VALUE,
                                  "max_new_tokens"),
    "enforce max_new_tokens str": (lambda: KNNLMPropagator(SCORER).enforce(Q, DOCS, max_new_tokens="8"), TYPE,
                                   "max_new_tokens"),
    "conservative enforce 0 tokens": (lambda: ConservativePropagator(SCORER).enforce(Q, DOCS, max_new_tokens=0),
                                      VALUE, "max_new_tokens"),
    # the registry
    "make_propagator unknown": (lambda: make_propagator("oracle", SCORER), VALUE, "propagator"),
    "make_propagator a list": (lambda: make_propagator(["permissive"], SCORER), VALUE, "propagator"),
    "make_propagator a misspelt option": (lambda: make_propagator("permissive", SCORER, tolerence=0.2), VALUE,
                                          "options"),
    "resolve_propagator a number": (lambda: resolve_propagator(3), TYPE, "propagator"),
    "resolve_propagator unknown": (lambda: resolve_propagator("oracle"), VALUE, "propagator"),
    "resolve_propagator lattice str": (lambda: resolve_propagator("permissive", lattice="chain"), TYPE, "lattice"),
    # sources, prompts, introspection replies
    "LabelledSource empty id": (lambda: LabelledSource("", "t"), VALUE, "LabelledSource.id"),
    "LabelledSource number id": (lambda: LabelledSource(3, "t"), TYPE, "LabelledSource.id"),
    "LabelledSource None text": (lambda: LabelledSource("a", None), TYPE, "LabelledSource.text"),
    "LabelledSource JSON label": (lambda: LabelledSource("a", "t", "public"), TYPE, "LabelledSource.label"),
    "ChatPrompt of a str": (lambda: ChatPrompt("smollm2"), TYPE, "tokenization"),
    "ChatPrompt system number": (lambda: ChatPrompt(SCORER, system=3), TYPE, "system"),
    "ChatPrompt.build query None": (lambda: ChatPrompt(SCORER).build(None, DOCS), TYPE, "query"),
    "ChatPrompt.build twice one id": (lambda: ChatPrompt(SCORER).build("?", DOCS * 2), VALUE, "documents"),
    "parse_reliance a number": (lambda: parse_reliance(3, ["d1"]), TYPE, "reply"),
    "parse_reliance known str": (lambda: parse_reliance("d1", "d1"), TYPE, "known"),
    # labels in flight and at rest
    "LabelCodec of a str": (lambda: LabelCodec("chain"), TYPE, "LabelCodec.lattice"),
    "LabelCodec.encode a str": (lambda: LabelCodec(CONF).encode("public"), TYPE, "label"),
    "LabelCodec.encode another lattice": (lambda: LabelCodec(CONF).encode(Tags(["x"]).bottom), LatticeError, "label"),
    "LabelCodec.encode missing str": (lambda: LabelCodec(CONF).encode(CONF.top, missing="yes"), TYPE, "missing"),
    "LabelCodec.where unknown": (lambda: LabelCodec(CONF).where("top-secret"), LatticeError, "clearance"),
    "LabelCodec.facets_agree None": (lambda: LabelCodec(CONF).facets_agree(None, CONF.top), TYPE, "metadata"),
    "Attestor lattice str": (lambda: Attestor("chain"), TYPE, "lattice"),
    "Attestor signer bytes": (lambda: Attestor(CONF, b"k" * 32), TYPE, "signer"),
    "RecordSeal signer str": (lambda: RecordSeal(CONF, "key", "docs"), TYPE, "signer"),
    "RecordSeal empty collection": (lambda: RecordSeal(CONF, KEY, ""), VALUE, "collection"),
    "digest of None": (lambda: digest(None), TYPE, "text"),
    "RetrievalGate session str": (lambda: RetrievalGate(CONF, KEY, "docs", session="k"), VALUE,
                                  "RetrievalGate.session"),
    "RetrievalGate clearance unknown": (lambda: RetrievalGate(CONF, KEY, "docs", clearance="top"), LatticeError,
                                        "clearance"),
    "RetrievalGate key str": (lambda: RetrievalGate(CONF, "key", "docs"), VALUE, "RetrievalGate.key"),
    "RetrievalGate collection": (lambda: RetrievalGate(CONF, KEY, ""), VALUE, "RetrievalGate.collection"),
}

POLICY = Policy(CONF, sinks={"post": "public"})
TRACKER = {
    "policy": dict(policy={"post": "public"}),
    "query_label": dict(query_label="top"),
    "max_runs": dict(max_runs=0),
    "audit": dict(audit="audit.jsonl"),
    "signer": dict(signer="key"),
    "propagator": dict(propagator="oracle"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_arguments_are_refused_naming_the_field(name):
    call, error, field = CASES[name]
    refused(call, error, field)


@pytest.mark.parametrize("field", TRACKER)
def test_flow_tracker_arguments(field):
    kw = dict(propagator=ConservativePropagator(), policy=POLICY, query_label="public") | TRACKER[field]
    refused(lambda: FlowTracker(kw.pop("propagator"), kw.pop("policy"), **kw), IFCError, field)


def test_audit_log_arguments(tmp_path):
    refused(lambda: AuditLog(3), TYPE, "AuditLog.path")
    refused(lambda: AuditLog(""), VALUE, "AuditLog.path")
    refused(lambda: AuditLog(tmp_path / "no" / "audit.jsonl"), VALUE, "AuditLog.path")
    refused(lambda: AuditLog(tmp_path), VALUE, "AuditLog.path")
    refused(lambda: AuditLog(tmp_path / "a.jsonl", on_error="ignore"), VALUE, "AuditLog.on_error")
    log = AuditLog(tmp_path / "a.jsonl")
    refused(lambda: log.write("a decision"), TYPE, "entry")
    assert not (tmp_path / "a.jsonl").exists()


def test_good_input_still_passes():
    """The checks refuse only what is wrong: the forms the docs show keep working."""
    assert Readers({"bob", "alice"}).atoms == ("alice", "bob")  # a set, in a stable order
    assert Tolerance.of(0.2) == Tolerance(lam=0.2) and Tolerance.of(None) == Tolerance()
    assert Tolerance(lam=np.float32(0.5)).lam == 0.5 and SearchBudget(max_scored=None, seconds=None).seconds is None
    assert LabelCodec(CONF).where("internal") == LabelCodec(CONF).where(CONF.label("internal"))
    assert make_propagator("permissive", SCORER, k=3).tolerance == Tolerance.named("alone")  # another propagator's option
    ids = SCORER.encode("Zelbrook.")
    for output in ("Zelbrook.", list(ids), tuple(ids), np.asarray(ids)):
        d = PermissivePropagator(SCORER).label(Q, DOCS, output, id="c1")
        assert d.fallback_reason is None and d.id == "c1"
    assert KNNLMPropagator(SCORER, alpha=0.5, k=np.int64(4)).k == 4
    assert ConservativePropagator().label(Q, (d for d in DOCS), "x").label == CONF.label("secret")


def test_knnlm_refuses_a_criterion_it_cannot_apply():
    from ifc_core import KNNLMPropagator

    with pytest.raises(ConfigurationError, match="tolerance: the kNN-LM propagator judges with mean\\+guard only"):
        KNNLMPropagator(SCORER, tolerance=Tolerance.named("alone"))
    assert KNNLMPropagator(SCORER, tolerance=0.2).tolerance == Tolerance(lam=0.2)
