"""The introspection baseline on the real model: it fails closed whenever the reply is unusable."""

import json

import pytest

from ifc_core import IntrospectionPropagator, LabelledSource
from ifc_core.demo import DOCUMENTS, QUERY_LABEL
from ifc_core.cli import main

pytestmark = pytest.mark.model
QUESTION, ANSWER = "When is the office open?", "The office is open from 9 am to 6 pm, Monday to Friday."


def check_invariant(d):
    if d.fallback_reason is not None:
        assert d.label == d.conservative_label and "introspection reply" in d.fallback_reason
    else:  # a usable reply: the label is the join of what it named, and never below the query
        admitted = [x for x in DOCUMENTS if x.id in d.admitted]
        assert d.label == QUERY_LABEL.lattice.join_all([QUERY_LABEL, *(x.label for x in admitted)])


def test_estimate_and_enforce_fail_closed(scorer):
    prop = IntrospectionPropagator(scorer)
    query = LabelledSource("q", QUESTION, QUERY_LABEL)
    check_invariant(prop.label(query, DOCUMENTS, ANSWER))
    enforced = prop.enforce(query, DOCUMENTS, max_new_tokens=24)
    check_invariant(enforced)
    assert enforced.mode == "enforce" and enforced.output


def test_selectable_by_name_in_the_cli(tmp_path):
    case = {"id": "c", "lattice": QUERY_LABEL.lattice.spec(), "query": {"text": QUESTION, "label": QUERY_LABEL.to_json()},
            "documents": [{"id": d.id, "text": d.text, "label": d.label.to_json()} for d in DOCUMENTS],
            "output": ANSWER}
    (tmp_path / "cases.jsonl").write_text(json.dumps(case) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["label", str(tmp_path / "cases.jsonl"), "-o", str(out), "--propagator", "introspection",
                 "--tolerance", "0.3"]) == 0  # a tolerance is ignored by a propagator that has none
    record = json.loads(out.read_text())
    assert record["propagator"] == "introspection" and record["mode"] == "estimate"
