"""Decision records and the JSONL audit log (no model needed)."""

import json

from ifc_core import AuditLog, Chain, ConservativePropagator, LabelledSource

CONF = Chain(["public", "secret"])


def test_audit_log_writes_one_json_line_per_decision(tmp_path):
    prop = ConservativePropagator()
    query = LabelledSource("q", "Q?", CONF.label("public"))
    docs = [LabelledSource("d1", "A.", CONF.label("secret")), LabelledSource("d2", "B.")]
    log = AuditLog(tmp_path / "audit.jsonl")
    log.write(prop.label(query, docs, "A.", id="one"))
    log.write({"event": "custom", "id": "two"})
    first, second = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert first["id"] == "one" and first["label"] == "secret" and first["mode"] == "estimate"
    assert first["lattice"] == {"type": "chain", "levels": ["public", "secret"]}
    assert first["notes"] == ["d2: unlabelled, treated as ⊤"] and first["improved"] is False
    assert second == {"event": "custom", "id": "two"}


def test_query_and_document_may_share_an_id():
    d = ConservativePropagator().label(LabelledSource("x", "Q?", CONF.label("secret")),
                                       [LabelledSource("x", "A.", CONF.label("public"))], "A.")
    assert d.query_label == CONF.label("secret") and d.label == CONF.label("secret")


def test_duplicate_ids_fall_back_to_the_join_of_every_document():
    docs = [LabelledSource("x", "Secret.", CONF.label("secret")), LabelledSource("x", "Public.", CONF.label("public"))]
    d = ConservativePropagator().label(LabelledSource("q", "Q?", CONF.label("public")), docs, "Secret.")
    assert d.conservative_label == d.label == CONF.label("secret")
