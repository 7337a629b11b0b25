"""Tool policies: trusted sinks and result labels (no model)."""

import pytest

from ifc_core import Chain, IFCError, IFCViolation, LatticeError, Policy, Product

LAT = Product(conf=Chain(["public", "internal", "confidential"]), integrity=Chain(["trusted", "untrusted"]))


def lab(c, i="trusted"):
    return LAT.label({"conf": c, "integrity": i})


POLICY = Policy.from_dict(LAT, {
    "sinks": {"send_email": {"conf": "public", "integrity": "trusted"}, "post": LAT.top},
    "arguments": {"post": {"channel": {"conf": "public", "integrity": "trusted"}}},
    "results": {"web_search": {"conf": "public", "integrity": "untrusted"}},
})


def test_sink_checks():
    assert POLICY.check("send_email", lab("public")).allowed
    denied = POLICY.check("send_email", lab("public", "untrusted"), tool_call_id="c1")
    assert not denied.allowed and denied.tool_call_id == "c1"
    assert "may not flow to tool 'send_email'" in denied.reason
    closed = POLICY.check("calculator", lab("public"))  # no sink declared: closed, whatever the label
    assert not closed.allowed and closed.undeclared and "undeclared sinks are closed" in closed.reason


def test_argument_sinks_and_arguments_cannot_name_their_own_sink():
    ok = POLICY.check("post", lab("public"), {"channel": "#general", "text": "hi"})
    assert ok.allowed
    bad = POLICY.check("post", lab("internal"), {"channel": "#general"})
    assert not bad.allowed and bad.argument == "channel"
    # whatever a model writes into the call, the verdict comes from the policy only
    forged = {"channel": "#x", "sink": {"conf": "confidential"}, "ifc_sink": "⊤", "ifc_label": "public"}
    assert not POLICY.check("post", lab("internal"), forged).allowed
    assert not POLICY.check("send_email", lab("internal"), {"ifc_sink": "confidential"}).allowed


def test_result_labels_default_to_top():
    assert POLICY.result_label("web_search") == lab("public", "untrusted")
    assert POLICY.result_label("anything_else") == LAT.top


def test_undeclared_tools_open_only_on_purpose_and_bad_specs():
    opened = Policy(LAT, default_sink=LAT.top)  # the application opens every undeclared tool
    assert opened.check("calculator", lab("confidential")).allowed
    public_only = Policy(LAT, default_sink=lab("public"))
    assert not public_only.check("calculator", lab("internal")).allowed
    with pytest.raises(LatticeError, match="Policy.sinks.send_email"):
        Policy(LAT, sinks={"send_email": {"conf": "top-secret", "integrity": "trusted"}})
    with pytest.raises(IFCError, match="unknown key"):
        Policy.from_dict(LAT, {"sink": {}})


@pytest.mark.parametrize("kwargs, field", [
    ({"lattice": ["public", "secret"]}, "Policy.lattice"),
    ({"sinks": "x"}, "Policy.sinks"),
    ({"sinks": {"send_email": ["public"]}}, "Policy.sinks.send_email"),
    ({"arguments": {"post": "public"}}, "Policy.arguments.post"),
    ({"results": ["web_search"]}, "Policy.results"),
    ({"labelled_tools": "search_docs"}, "Policy.labelled_tools"),
    ({"sinks": {"send_email": Chain(["a", "b"]).label("a")}}, "Policy.sinks.send_email"),
    ({"default_sink": "public"}, "Policy.default_sink"),
])
def test_policy_checks_its_own_input(kwargs, field):
    with pytest.raises((ValueError, TypeError)) as err:
        Policy(**{"lattice": LAT, **kwargs})
    assert isinstance(err.value, IFCError) and field in str(err.value)


def test_a_policy_must_fit_the_agents_tools():
    typo = Policy(LAT, sinks={"send_emial": lab("public"), "search": LAT.top})
    with pytest.raises(IFCError, match="'send_emial'.*did you mean 'send_email'"):
        typo.check_tools(["send_email", "search"])
    missing = Policy(LAT, sinks={"search": LAT.top})
    with pytest.raises(IFCError, match="'send_email' has no sink"):
        missing.check_tools(["send_email", "search"])
    with pytest.raises(IFCError, match="did you mean 'send_emial'"):
        typo.check_guarded(["send_email"])
    Policy(LAT, sinks={"search": LAT.top}, default_sink=LAT.bottom).check_tools(["send_email", "search"])


def test_violation_is_structured():
    v = IFCViolation(POLICY.check("send_email", lab("confidential")))
    assert v.tool == "send_email" and v.label == lab("confidential") and v.sink == lab("public")
    assert v.to_dict()["allowed"] is False and "not made" in str(v)
