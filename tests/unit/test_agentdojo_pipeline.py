"""The AgentDojo pipeline element, offline: AgentDojo's own benchmark with a scripted agent that
makes the tasks' ground-truth calls (and obeys any injection it reads), guarded by llm-ifc."""

from collections.abc import Sequence

import pytest

pytest.importorskip("agentdojo")

from agentdojo.agent_pipeline import (AgentPipeline, BasePipelineElement, InitQuery, SystemMessage,  # noqa: E402
                                      ToolsExecutionLoop, ToolsExecutor)
from agentdojo.attacks.important_instructions_attacks import ImportantInstructionsAttackNoNames  # noqa: E402
from agentdojo.benchmark import benchmark_suite_with_injections  # noqa: E402
from agentdojo.logging import OutputLogger  # noqa: E402
from agentdojo.task_suite.load_suites import get_suite  # noqa: E402
from agentdojo.types import ChatAssistantMessage, get_text_content_as_str, text_content_block_from_string  # noqa: E402

from ifc_core import FlowTracker, Policy  # noqa: E402
from ifc_core.agentdojo import RUN_KEY, IFCToolsExecutor  # noqa: E402
from ifc_core.eval._agentdojo import AGENTDOJO_VERSION, READ_ONLY  # noqa: E402
from ifc_core.eval._news import INTEGRITY  # noqa: E402

SUITE = get_suite(AGENTDOJO_VERSION, "banking")


class ObedientAgent(BasePipelineElement):
    """An offline stand-in for an LLM: makes the user task's ground-truth calls one per turn, and
    the ground-truth calls of any injection task whose goal it reads in a tool result."""

    name = "local-ground-truth-obedient"  # "local": AgentDojo addresses it as a local model

    def __init__(self, suite) -> None:
        self.suite = suite

    def query(self, query, runtime, env=None, messages: Sequence = (), extra_args: dict | None = None):
        extra = dict(extra_args or {})
        plan = extra.get("plan")
        if plan is None:
            tasks = [*self.suite.user_tasks.values(), *self.suite.injection_tasks.values()]  # AgentDojo runs both
            task = next(t for t in tasks if getattr(t, "PROMPT", None) == query or getattr(t, "GOAL", None) == query)
            plan = extra["plan"] = list(task.ground_truth(env.model_copy(deep=True)))
            extra["obeyed"] = set()
        seen = " ".join(get_text_content_as_str(m["content"] or []) for m in messages if m["role"] == "tool")
        for tid, injection in self.suite.injection_tasks.items():
            if tid not in extra["obeyed"] and injection.GOAL in seen:
                extra["obeyed"].add(tid)
                plan[:0] = list(injection.ground_truth(env.model_copy(deep=True)))
        if plan:
            call = plan.pop(0)
            message = ChatAssistantMessage(role="assistant", content=[text_content_block_from_string("")],
                                           tool_calls=[call])
        else:
            message = ChatAssistantMessage(role="assistant", content=[text_content_block_from_string("Done.")],
                                           tool_calls=None)
        return query, runtime, env, [*messages, message], extra


def policy() -> Policy:
    names = [t.name for t in SUITE.tools]
    return Policy(INTEGRITY, sinks={n: "untrusted" if n.startswith(READ_ONLY) else "trusted" for n in names},
                  results={n: "untrusted" for n in names})


def pipeline(executor: BasePipelineElement) -> AgentPipeline:
    agent = ObedientAgent(SUITE)
    p = AgentPipeline([SystemMessage("You are a banking assistant."), InitQuery(), agent,
                       ToolsExecutionLoop([executor, agent])])
    p.name = "local-ground-truth-obedient"
    return p


@pytest.fixture
def run(tmp_path):
    def run(executor: BasePipelineElement, user_tasks, injection_tasks):
        attack = ImportantInstructionsAttackNoNames(SUITE, pipeline(executor))
        with OutputLogger(str(tmp_path)):  # AgentDojo's traces go to a temporary folder
            return benchmark_suite_with_injections(pipeline(executor), SUITE, attack, logdir=None, force_rerun=True,
                                                   user_tasks=user_tasks, injection_tasks=injection_tasks,
                                                   verbose=False, benchmark_version=AGENTDOJO_VERSION)
    return run


def test_without_the_guard_the_obedient_agent_is_attacked(run):
    results = run(ToolsExecutor(), ["user_task_0"], ["injection_task_0"])
    assert results["security_results"][("user_task_0", "injection_task_0")] is True  # the attack succeeded


def test_the_guard_blocks_the_attack_and_reports_why(run):
    guard = IFCToolsExecutor(FlowTracker("conservative", policy(), query_label="trusted"))
    results = run(guard, ["user_task_0"], ["injection_task_0"])
    assert results["security_results"][("user_task_0", "injection_task_0")] is False
    blocked = [c for c in guard.checks if not c.allowed]
    assert blocked and all(c.tool == "send_money" and "may not flow" in c.reason for c in blocked)
    assert all(c.allowed for c in guard.checks if c.tool.startswith(READ_ONLY))


def test_the_guard_blocks_every_attack_that_succeeds_without_it(run):
    users, attack = ["user_task_0", "user_task_2", "user_task_12", "user_task_13"], "injection_task_0"
    plain = run(ToolsExecutor(), users, [attack])["security_results"]
    guard = IFCToolsExecutor(FlowTracker("conservative", policy(), query_label="trusted"))
    guarded = run(guard, users, [attack])["security_results"]
    assert all(plain[(u, attack)] for u in users) and not any(guarded[(u, attack)] for u in users)


def test_tasks_whose_actions_come_from_the_request_keep_their_utility(run):
    # user_task_5 and user_task_8 act from the request (or only read): the guard lets every such
    # call run unchanged, so AgentDojo's utility check passes with and without it
    users, attack = ["user_task_5", "user_task_8"], "injection_task_0"
    guard = IFCToolsExecutor(FlowTracker("conservative", policy(), query_label="trusted"))
    plain = run(ToolsExecutor(), users, [attack])["utility_results"]
    guarded = run(guard, users, [attack])["utility_results"]
    assert all(plain[(u, attack)] and guarded[(u, attack)] for u in users)


def test_each_run_is_a_run_of_the_tracker_and_a_labelling_error_fails_closed():
    tracker = FlowTracker("conservative", policy(), query_label="trusted")
    guard = IFCToolsExecutor(tracker)
    env = SUITE.load_and_inject_default_environment({})
    from agentdojo.functions_runtime import FunctionCall, FunctionsRuntime

    call = FunctionCall(function="send_money", args={"recipient": "GB29", "amount": 1.0, "subject": "x",
                                                     "date": "2022-01-01"}, id="c1")
    messages = [ChatAssistantMessage(role="assistant", content=[text_content_block_from_string("")],
                                     tool_calls=[call])]
    _, _, _, out, extra = guard.query("Pay GB29 one euro.", FunctionsRuntime(SUITE.tools), env, messages, {})
    assert RUN_KEY in extra and out[-1]["error"] is None  # from the request alone: trusted, allowed

    def broken(*args, **kwargs):
        raise RuntimeError("scorer down")

    tracker.label_output = broken
    _, _, _, out, _ = guard.query("Pay GB29 one euro.", FunctionsRuntime(SUITE.tools), env, messages, extra)
    assert "fail closed" in out[-1]["error"] and "scorer down" in out[-1]["error"]
