"""Approval requests and answers: bound to the exact call by a digest (no model)."""

import pytest

from ifc_core import (Chain, ConservativePropagator, FlowTracker, LabelledSource, Policy, PromptMessage,
                      approval_request, call_digest, read_review)

CONF = Chain(["public", "secret"])
POLICY = Policy(CONF, sinks={"post": "public"})
SECRET = "The launch code is 4417-2209."


def refused():
    t = FlowTracker(ConservativePropagator(), POLICY, query_label="public")
    t.begin("run", ["q"])
    t.add_source("run", LabelledSource("code", SECRET, CONF.label("secret")))
    t.label_output("run", "", [{"name": "post", "args": {"text": SECRET, "to": "bob"}, "id": "c1"}],
                   prompt=[PromptMessage("user", f"{SECRET}\nq")])
    return t, t.check_call("run", "post", {"text": SECRET, "to": "bob"}, "c1")


def test_the_digest_changes_with_the_tool_the_arguments_the_id_and_the_label():
    base = call_digest("post", {"to": "bob"}, "c1", CONF.top)
    assert base == call_digest("post", {"to": "bob"}, "c1", CONF.top)
    for other in (call_digest("mail", {"to": "bob"}, "c1", CONF.top), call_digest("post", {"to": "eve"}, "c1", CONF.top),
                  call_digest("post", {"to": "bob"}, "c2", CONF.top), call_digest("post", {"to": "bob"}, "c1", CONF.bottom)):
        assert other != base


def test_the_request_shows_everything_and_answers_must_echo_it():
    _, check = refused()
    request = approval_request(check, {"text": SECRET, "to": "bob"}, run="thread-1")
    assert request["args"] == {"text": SECRET, "to": "bob"} and request["tool_call_id"] == "c1"
    assert request["run"] == "thread-1" and request["action_requests"][0]["ifc_digest"] == request["digest"]
    digest = request["digest"]
    assert read_review({"decisions": [{"type": "approve", "ifc_digest": digest}]}, digest)[0].kind == "approve"
    assert read_review({"approve": False, "ifc_digest": digest}, digest)[0].kind == "reject"
    assert read_review({"decisions": [{"type": "approve"}], "ifc_digest": digest}, digest)[0].kind == "approve"
    for answer in ({"decisions": [{"type": "approve"}]}, {"approve": True, "ifc_digest": "x"}, True, "approve",
                   {"decisions": [{"type": "maybe", "ifc_digest": digest}]},
                   {"decisions": [{"type": "edit", "ifc_digest": digest}]}):
        review, problem = read_review(answer, digest)
        assert review is None and problem


@pytest.mark.parametrize("edited, allowed", [
    ({"text": "Please call me.", "to": "bob"}, True),      # new text; the recipient kept as shown
    ({"text": "It is 4417-2209.", "to": "bob"}, False),    # a number of the secret
    ({"text": f"Note: {SECRET[4:20]}", "to": "bob"}, False),  # a stretch of it
])
def test_an_edit_is_checked_again(edited, allowed):
    t, check = refused()
    assert t.check_edit("run", check, {"text": SECRET, "to": "bob"}, edited).allowed is allowed
