"""Decisions and checks reach Python logging and OpenTelemetry span events (no model)."""

import logging

from ifc_core import LOGGER_NAME, Chain, ConservativePropagator, FlowTracker, LabelledSource, Policy, PromptMessage

CONF = Chain(["public", "secret"])


def tracker():
    t = FlowTracker(ConservativePropagator(), Policy(CONF, sinks={"post": "public"}), query_label="public")
    t.begin("run", ["q"])
    t.add_source("run", LabelledSource("s", "The code is 12.", CONF.label("secret")))
    return t


def test_decisions_at_debug_refusals_at_warning_nothing_printed(caplog, capsys):
    t = tracker()
    with caplog.at_level(logging.DEBUG, logger=LOGGER_NAME):
        t.label_output("run", "The code is 12.", [{"name": "post", "args": {}, "id": "c1"}],
                       prompt=[PromptMessage("user", "The code is 12.\nq")])
        t.check_call("run", "post", {}, "c1")
    levels = [(r.levelname, r.name) for r in caplog.records]
    assert ("DEBUG", LOGGER_NAME) in levels and ("WARNING", LOGGER_NAME) in levels
    assert "refused" in caplog.records[-1].getMessage()
    assert capsys.readouterr() == ("", "")


def test_decisions_and_checks_are_span_events():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    t = tracker()
    with provider.get_tracer("test").start_as_current_span("agent step"):
        t.label_output("run", "The code is 12.", [{"name": "post", "args": {}, "id": "c1"}],
                       prompt=[PromptMessage("user", "The code is 12.\nq")])
        t.check_call("run", "post", {}, "c1")
    (span,) = exporter.get_finished_spans()
    decision, check = span.events
    assert decision.name == "ifc.decision" and decision.attributes["ifc.label"] == "secret"
    assert check.name == "ifc.check" and check.attributes["ifc.sink"] == "public"
    assert check.attributes["ifc.allowed"] is False and "may not flow" in check.attributes["ifc.reason"]
