"""Tool policies: trusted sinks and result labels (no model)."""

import pytest

from ifc_core import Chain, IFCError, IFCViolation, LatticeError, Policy, Product

LAT = Product(conf=Chain(["public", "internal", "confidential"]), integrity=Chain(["trusted", "untrusted"]))


def lab(c, i="trusted"):
    return LAT.label({"conf": c, "integrity": i})


POLICY = Policy.from_dict(LAT, {
    "sinks": {"send_email": {"conf": "public", "integrity": "trusted"}},
    "arguments": {"post": {"channel": {"conf": "public", "integrity": "trusted"}}},
    "results": {"web_search": {"conf": "public", "integrity": "untrusted"}},
})


def test_sink_checks():
    assert POLICY.check("send_email", lab("public")).allowed
    denied = POLICY.check("send_email", lab("public", "untrusted"), tool_call_id="c1")
    assert not denied.allowed and denied.tool_call_id == "c1"
    assert "may not flow to tool 'send_email'" in denied.reason
    assert POLICY.check("calculator", lab("confidential", "untrusted")).allowed  # no sink declared: ⊤


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


def test_deny_by_default_and_bad_specs():
    strict = Policy(LAT, default_sink=LAT.bottom)
    assert not strict.check("calculator", lab("internal")).allowed
    with pytest.raises(LatticeError, match="Policy.sinks.send_email"):
        Policy(LAT, sinks={"send_email": {"conf": "top-secret", "integrity": "trusted"}})
    with pytest.raises(IFCError, match="unknown key"):
        Policy.from_dict(LAT, {"sink": {}})


def test_violation_is_structured():
    v = IFCViolation(POLICY.check("send_email", lab("confidential")))
    assert v.tool == "send_email" and v.label == lab("confidential") and v.sink == lab("public")
    assert v.to_dict()["allowed"] is False and "not made" in str(v)
