"""`ifc eval`'s summary.json: the issue's format, fractions in [0, 1], null where undefined (no model)."""

import json

import pytest

from ifc_core.eval import EvalConfig, EvalResult, write_report
from ifc_core.eval._metrics import Metrics
from ifc_core.eval._summary import summary


def row(dataset, propagator="permissive", mode="estimate", cases=4, improved=0.5, exact=0.75, unsafe=0.0,
        fallback=0.25, seconds=1.5):
    return Metrics(dataset, propagator, mode, cases, improved, exact, unsafe, fallback, None, 3.0, seconds)


def test_summary_has_the_issues_format():
    got = summary([row("agentdojo/benign"), row("agentdojo/benign", "conservative", improved=0.0),
                   row("synthetic", mode="enforce", exact=None), row("agentdojo-banking/malicious", improved=None)])
    assert set(got) == {"agentdojo/benign", "synthetic/all", "agentdojo-banking/malicious"}
    assert set(got["agentdojo/benign"]) == {"permissive/estimate", "conservative/estimate"}
    assert got["agentdojo/benign"]["permissive/estimate"] == {
        "cases": 4, "improved": 0.5, "exact": 0.75, "unsafe": 0.0, "fallback": 0.25, "s_per_decision": 1.5}
    assert got["synthetic/all"]["permissive/enforce"]["exact"] is None
    assert got["agentdojo-banking/malicious"]["permissive/estimate"]["improved"] is None


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_a_share_outside_zero_to_one_is_an_error(bad):
    with pytest.raises(ValueError, match="exact"):
        summary([row("news", exact=bad)])


def test_write_report_writes_summary_json_beside_the_report(tmp_path):
    result = EvalResult(EvalConfig(datasets=("synthetic",), propagators=("conservative",)),
                        metrics=[row("synthetic", "conservative", improved=None, seconds=None),
                                 row("agentdojo/benign"), row("agentdojo/malicious", exact=1.0, improved=None)],
                        skipped=["banking/user_task_1/call3: context of 3000 tokens, over 2500"])
    path = write_report(result, tmp_path / "report", command="ifc eval")
    data = json.loads((path.parent / "summary.json").read_text())
    assert data["synthetic/all"]["conservative/estimate"] == {
        "cases": 4, "improved": None, "exact": 0.75, "unsafe": 0.0, "fallback": 0.25, "s_per_decision": None}
    for kinds in data.values():
        for r in kinds.values():
            assert set(r) == {"cases", "improved", "exact", "unsafe", "fallback", "s_per_decision"}
            assert all(r[k] is None or 0.0 <= r[k] <= 1.0 for k in ("improved", "exact", "unsafe", "fallback"))
    text = path.read_text()
    assert "## AgentDojo: the targets" in text and "banking/user_task_1/call3: context of 3000" in text


def test_an_unknown_agentdojo_suite_is_refused():
    from ifc_core import ConfigurationError

    with pytest.raises(ConfigurationError, match="agent_suites: unknown suite 'nosuch'"):
        EvalConfig(agent_suites=("banking", "nosuch"))
    assert EvalConfig(agent_suites=("banking",)).agent_suites == ("banking",)
