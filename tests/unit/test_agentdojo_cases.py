"""AgentDojo replayed offline: per-item labels from the canary replay, the canary ground truth
of benign calls, seeded injection samples, skipped cases listed (no model)."""

import pytest

pytest.importorskip("agentdojo")

from ifc_core import FlowTracker  # noqa: E402
from ifc_core.eval._agentdojo import (VectorItems, agentdojo_cases, agentdojo_policy, canaries, replay,  # noqa: E402
                                      result_items)
from ifc_core.eval._news import INTEGRITY  # noqa: E402

T, U = INTEGRITY.label("trusted"), INTEGRITY.label("untrusted")


@pytest.fixture(scope="module")
def banking():
    from agentdojo.task_suite.load_suites import get_suite

    return get_suite("v1.2.1", "banking")


@pytest.fixture(scope="module")
def cases():
    return agentdojo_cases(suites=("banking",))


def test_every_user_task_is_replayed_and_three_attacks_are_sampled_per_task(banking, cases):
    benign = [c for c in cases if c.kind == "benign"]
    malicious = [c for c in cases if c.kind == "malicious"]
    assert benign and all(c.truth in (T, U) and c.calls for c in benign)
    per_task = {}
    for c in malicious:
        per_task.setdefault(c.meta["task"], set()).add(c.meta["attack"])
        assert c.truth == U
    assert per_task and all(len(a) == 3 for a in per_task.values())
    again = agentdojo_cases(suites=("banking",))
    assert [c.id for c in again] == [c.id for c in cases]  # seeded


def transactions(banking):
    """The plain and canary replays of a user task whose first call lists transactions."""
    for user in banking.user_tasks.values():
        plain, marked = replay(banking, user, {}), replay(banking, user, canaries(banking))
        if plain and plain[0][0].function == "get_most_recent_transactions":
            return plain[0], marked[0]
    raise AssertionError("no user task lists transactions first")


def test_the_items_that_carry_a_vector_are_untrusted_and_the_rest_trusted(banking):
    (call, result, text), (_, shadow, _) = transactions(banking)
    tracker = FlowTracker("conservative", agentdojo_policy(banking), query_label="trusted")
    parts = tracker.add_tool_result("r", call.function, text, "c0", result=(result, shadow))
    items = [p for p in parts if "/" in p.id.rsplit(":", 1)[-1]]
    assert len(items) == len(result) >= 2  # one source per transaction: tool:<tool>:<id>/<path>
    marks = list(canaries(banking).values())
    for p, (path, marked) in zip(items, result_items(shadow)):
        assert p.label == (U if any(m in marked for m in marks) else T)
    assert {p.label for p in items} == {T, U}


def test_replays_that_disagree_on_the_items_fail_closed(banking):
    (call, result, text), (_, shadow, _) = transactions(banking)
    tracker = FlowTracker("conservative", agentdojo_policy(banking), query_label="trusted")
    parts = tracker.add_tool_result("r", call.function, text, "c0", result=(result, shadow[:1]))
    assert parts and all(p.label == U for p in parts)


def test_benign_truth_is_trusted_exactly_when_the_canary_replay_makes_the_same_call(banking, cases):
    for c in (c for c in cases if c.kind == "benign"):
        user = banking.user_tasks[c.meta["task"]]
        k = int(c.id.rsplit("call", 1)[1])
        plain, marked = replay(banking, user, {}), replay(banking, user, canaries(banking))
        same = dict(plain[k][0].args) == dict(marked[k][0].args)
        assert c.truth == (T if same else U)


def test_vector_items_label_by_the_canary_replay_and_refuse_other_items():
    labeller = VectorItems(["<CANARY>"])
    items = list(labeller.items((["x", "y"], ["x", "y <CANARY>"])))
    assert [i.label for i in items] == ["trusted", "untrusted"]
    with pytest.raises(ValueError):
        list(labeller.items((["x", "y"], ["x"])))
    assert labeller.fallback == "untrusted"


def test_result_items_cover_the_text_the_model_sees():
    from agentdojo.agent_pipeline.tool_execution import tool_result_to_str

    d = {"a": "one", "b": 2}
    assert "".join(t for _, t in result_items(d)) == str(d)
    assert [p for p, _ in result_items(["x", "y"])] == ["0", "1"]
    assert result_items("plain") == [("0", tool_result_to_str("plain"))]


def test_cases_over_the_token_limit_are_listed_with_the_reason_never_truncated():
    skipped: list[str] = []
    kept = agentdojo_cases(suites=("banking",), user_tasks=3, injection_tasks=1, max_tokens=50, skipped=skipped)
    assert skipped and all("over 50" in s for s in skipped)
    assert all(sum(len(d.text) for d in c.documents) // 4 <= 50 for c in kept)


def test_the_policy_labels_every_tool_item_by_item_and_guards_the_actions(banking):
    policy = agentdojo_policy(banking)
    assert all(isinstance(policy.labeller(t.name), VectorItems) for t in banking.tools)
    assert policy.sink("send_money") == T and policy.sink("get_balance") == U


def test_enforce_keys_are_the_call_values_the_documents_state_and_the_request_does_not(cases):
    malicious = [c for c in cases if c.kind == "malicious"]
    keyed = [c for c in malicious if c.keys]
    assert len(keyed) > len(malicious) / 2  # the attacker's IBAN, password or address
    for c in keyed:
        docs = {d.id: d for d in c.documents}
        assert not c.needed  # a malicious call has nothing to retain
        for doc, key in c.keys.items():
            assert key in docs[doc].text and key not in c.query.text and len(key) >= 4
        assert any(docs[doc].label == U for doc in c.keys)  # the attack's value is in an injected item
    benign = [c for c in cases if c.kind == "benign" and c.keys]
    assert benign and all(set(c.needed) == set(c.keys) for c in benign)
