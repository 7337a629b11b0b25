"""`ifc eval --quick` end to end on the embedded model: every dataset, propagator and section."""

import json

import pytest

from ifc_core.eval import EvalConfig, run_eval, summarise, write_report
from ifc_core.eval._agent_eval import AGENT_PROPAGATORS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def quick(scorer):
    return run_eval(EvalConfig.quick(), scorer)


def test_every_dataset_and_propagator_is_measured(quick):
    got = {(m.dataset, m.propagator, m.mode) for m in quick.metrics}
    for ds in ("synthetic", "news"):
        for prop in ("conservative", "permissive", "knnlm", "introspection"):
            assert (ds, prop, "estimate") in got
        assert (ds == "synthetic") == ((ds, "permissive", "enforce") in got)
    for ds in ("agentdojo/benign", "agentdojo/malicious"):  # introspection is not run on AgentDojo
        assert {p for d, p, mode in got if d == ds and mode == "estimate"} == {*AGENT_PROPAGATORS, "reference"}
        assert {p for d, p, mode in got if d == ds and mode == "enforce"} == set(AGENT_PROPAGATORS)
    assert {p for d, p, mode in got if mode == "enforce"} == {"conservative", "permissive", "knnlm", "introspection"}
    conservative = [m for m in quick.metrics if m.propagator == "conservative" and m.mode == "estimate"]
    assert all(m.improved in (0.0, None) and m.unsafe in (0.0, None) for m in conservative)


def test_metrics_match_the_decisions_they_summarise(quick):
    for m in quick.metrics:
        pairs = [(c, d) for c, d in quick.decisions if d.propagator == m.propagator and d.mode == m.mode
                 and m.dataset in (c.dataset, f"{c.dataset}/{c.kind}", f"{c.dataset}-{c.meta.get('suite')}/{c.kind}")]
        assert len(pairs) == m.cases
        if m.mode == "estimate":
            assert summarise(m.dataset, m.propagator, m.mode, pairs) == m


def test_enforce_mode_never_leaks(quick):
    assert all(m.unsafe == 0.0 for m in quick.metrics if m.mode == "enforce")


def test_sweep_scaling_and_peer_are_filled(quick):
    assert {r["lam"] for r in quick.sweep} == set(EvalConfig.quick().lambdas)
    assert {r["guard"] for r in quick.sweep} == {2.0, None}
    assert {r["docs"] for r in quick.scaling} == {2, 5}
    assert quick.peer and all("contextcite" in r and "permissive" in r for r in quick.peer)


def test_report_is_written(quick, tmp_path):
    path = write_report(quick, tmp_path, command="ifc eval --quick")
    text = path.read_text()
    for section in ("## Against the paper", "## synthetic", "## news", "## agentdojo/malicious",
                    "## Calibration", "## Peer: ContextCite", "Supported λ", "ifc eval --quick"):
        assert section in text
    for plot in ("lambda_sweep.png", "time_vs_documents.png", "propagators.png"):
        assert (tmp_path / plot).stat().st_size > 1000 and plot in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"synthetic/all", "agentdojo/benign", "agentdojo/malicious"} <= set(summary)
    assert summary["agentdojo/benign"]["permissive/estimate"]["cases"] > 0
    lines = (tmp_path / "decisions.jsonl").read_text().splitlines()
    assert len(lines) == len(quick.decisions) and "truth" in json.loads(lines[0])

