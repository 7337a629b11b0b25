"""The HR scenario end to end: labels from the real scorer, Chroma for real, LangChain for real."""

import pytest

from ifc_core.demo import REQUESTS
from langchain_ifc._demo import run_agent_request, run_rag

pytestmark = pytest.mark.model

EXPECTED = [("public/trusted", True), ("confidential/trusted", False), ("public/untrusted", False)]


@pytest.mark.parametrize("request_, expected", list(zip(REQUESTS, EXPECTED)), ids=["faq", "salary", "injection"])
def test_agent_requests(store, scorer, request_, expected):
    outcome = run_agent_request(request_, store, scorer)
    assert (outcome.permissive, outcome.sent) == expected
    assert outcome.conservative == "confidential/untrusted"  # would have blocked every email
    if not outcome.sent:
        assert outcome.reason.startswith("IFC: this call was blocked") and "send_email" in outcome.reason


def test_rag_chain_on_the_embedded_model(store, scorer):
    estimate = run_rag("When is the office open?", store, scorer)
    d = estimate["decision"]
    assert "9 am" in estimate["answer"] and d.mode == "estimate"
    assert d.label.to_json() == {"conf": "public", "integrity": "trusted"} and d.admitted == ["faq"]
    enforced = run_rag("When is the office open?", store, scorer, enforce=True)
    e = enforced["decision"]
    assert e.mode == "enforce" and e.regenerated and e.admitted == ["faq"]
    assert e.label.to_json() == {"conf": "public", "integrity": "trusted"}
