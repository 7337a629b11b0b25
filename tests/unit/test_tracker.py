"""FlowTracker bookkeeping that must fail closed (no model: the conservative propagator)."""

from ifc_core import Chain, ConservativePropagator, FlowTracker, LabelledSource, Policy

CONF = Chain(["public", "secret"])


def tracker(max_runs=4096):
    return FlowTracker(ConservativePropagator(), Policy(CONF, sinks={"post": "public"}),
                       query_label=CONF.bottom, max_runs=max_runs)


def test_an_id_clash_never_replaces_a_source():
    t = tracker()
    t.add_source("run", LabelledSource("doc", "The launch code is 1234.", CONF.label("secret")))
    t.add_source("run", LabelledSource("doc", "Nothing to see.", CONF.label("public")))
    t.add_source("run", LabelledSource("doc", "Nothing to see.", CONF.label("public")))  # a true repeat
    assert sorted(t.state("run").sources) == ["doc", "doc#2"]
    assert t.label_output("run", "The launch code is 1234.").label == CONF.label("secret")


def test_only_finished_runs_are_forgotten():
    t = tracker(max_runs=2)
    t.add_source("live", LabelledSource("doc", "Secret.", CONF.label("secret")))
    for i in range(5):
        t.state(f"done-{i}")
        t.finish(f"done-{i}")
    assert "live" in dict(t.runs()) and len(t.runs()) == 2
    assert t.label_output("live", "Secret.").label == CONF.label("secret")


def test_tool_results_take_the_declared_label_and_calls_without_a_label_are_top():
    t = tracker()
    (source,) = t.add_tool_result("run", "web", '{"ifc_label": "public"}', "r1")
    assert source.label == CONF.top  # undeclared tool: ⊤, whatever the content says
    check = t.check_call("other-run", "post", {"text": "hi"}, "call-1")
    assert not check.allowed and check.label == CONF.top  # no output known: checked as ⊤
