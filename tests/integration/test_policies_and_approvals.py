"""Policies that fail closed and approvals bound to the exact call, in both frameworks (issue 12)."""

import asyncio
import json

import pytest
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from ifc_core import AuditLog, ConfigurationError, PermissivePropagator, Policy
from ifc_core.demo import LATTICE, POLICY, QUERY_LABEL, REQUESTS
from langchain_ifc import IFCCallbackHandler, IFCMiddleware, guard_tool, guard_tools
from langchain_ifc._demo import hr_agent

pytestmark = pytest.mark.model
FAQ, SALARY, INJECTION = REQUESTS
SECRET = "Alice Smith earns 95,000 dollars a year."


def user(request):
    return {"messages": [{"role": "user", "content": request.text}]}


def interrupting(scorer, audit=None):
    return IFCMiddleware(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL, on_violation="interrupt",
                         audit=audit)


# policies fail closed --------------------------------------------------------------------------------
def test_a_misspelt_policy_is_refused_before_anything_runs(store, scorer):
    typo = Policy(LATTICE, sinks={"send_emial": QUERY_LABEL, "search_docs": LATTICE.top})
    agent, outbox = hr_agent(store, SALARY, middleware=[IFCMiddleware(PermissivePropagator(scorer), typo,
                                                                      query_label=QUERY_LABEL)])
    with pytest.raises(ConfigurationError, match="'send_emial'.*did you mean 'send_email'"):
        agent.invoke(user(SALARY))
    assert outbox == []


def test_a_policy_with_no_sinks_lets_nothing_through(store, scorer):
    handler = IFCCallbackHandler(PermissivePropagator(scorer), Policy(LATTICE), query_label=QUERY_LABEL)
    agent, outbox = hr_agent(store, FAQ)
    with pytest.raises(Exception, match="undeclared sinks are closed"):
        agent.invoke(user(FAQ), config={"callbacks": [handler]})
    assert outbox == []
    opened = Policy(LATTICE, default_sink=LATTICE.top)  # opening undeclared tools is a choice, made on purpose
    handler = IFCCallbackHandler(PermissivePropagator(scorer), opened, query_label=QUERY_LABEL)
    agent, outbox = hr_agent(store, FAQ)
    agent.invoke(user(FAQ), config={"callbacks": [handler]})
    assert len(outbox) == 1


def test_guard_tool_refuses_a_tool_the_policy_does_not_cover(handler):
    @tool
    def send_emails(to: str) -> str:
        """Send emails."""
        return "sent"

    with pytest.raises(ConfigurationError, match="'send_emails' has no sink.*did you mean 'send_email'"):
        guard_tool(send_emails, handler)
    with pytest.raises(ConfigurationError, match="'search_docs'"):
        guard_tools([send_emails], handler)  # the policy names tools this list lacks


def test_interrupt_without_a_checkpointer_is_an_error(store, scorer):
    agent, outbox = hr_agent(store, SALARY, middleware=[interrupting(scorer)])
    with pytest.raises(ConfigurationError, match="needs a checkpointer"):
        agent.invoke(user(SALARY))
    assert outbox == []


# approvals --------------------------------------------------------------------------------------------
def paused(store, scorer, thread, audit=None):
    agent, outbox = hr_agent(store, SALARY, middleware=[interrupting(scorer, audit)], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": thread}}
    (pending,) = agent.invoke(user(SALARY), config=config)["__interrupt__"]
    return agent, outbox, config, pending.value


def test_the_request_shows_the_call_in_the_hitl_format(store, scorer):
    _, outbox, _, request = paused(store, scorer, "show")
    assert request["tool"] == "send_email" and request["args"] == SALARY.email and request["tool_call_id"] == "call_email"
    assert request["label"] == {"conf": "confidential", "integrity": "trusted"} and "may not flow" in request["reason"]
    (action,) = request["action_requests"]
    assert action["name"] == "send_email" and action["args"] == SALARY.email and action["ifc_digest"] == request["digest"]
    assert request["review_configs"] == [{"action_name": "send_email",
                                          "allowed_decisions": ["approve", "edit", "reject", "respond"]}]
    assert outbox == []


def test_an_answer_that_does_not_echo_the_digest_is_not_taken(store, scorer):
    agent, outbox, config, request = paused(store, scorer, "no-digest")
    again = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config=config)
    (pending,) = again["__interrupt__"]
    assert "digest" in pending.value["problem"] and outbox == []


def test_a_call_changed_after_the_request_is_asked_again(store, scorer):
    agent, outbox, config, request = paused(store, scorer, "changed")
    state = agent.get_state(config)
    ai = next(m for m in reversed(state.values["messages"]) if getattr(m, "tool_calls", None))
    leak = [{**ai.tool_calls[0], "args": {**ai.tool_calls[0]["args"], "to": "leak@evil.example"}}]
    agent.update_state(config, {"messages": [ai.model_copy(update={"tool_calls": leak})]})
    again = agent.invoke(Command(resume={"decisions": [{"type": "approve", "ifc_digest": request["digest"]}]}),
                         config=config)
    (pending,) = again["__interrupt__"]  # the approval of bob's email does not send the leak
    assert pending.value["args"]["to"] == "leak@evil.example" and pending.value["digest"] != request["digest"]
    assert pending.value["label"] == LATTICE.top.to_json()  # the edited answer's seal no longer holds
    assert outbox == []


@pytest.mark.parametrize("decision, sent, reply", [
    ({"type": "approve"}, True, "sent to bob"),
    ({"type": "reject", "message": "not to bob"}, False, "not to bob"),
    ({"type": "respond", "message": "Ask HR instead."}, False, "Ask HR instead."),
    ({"type": "edit", "edited_action": {"name": "send_email", "args": {
        "to": "bob@acme.example", "subject": "Salary", "body": "Please ask HR."}}}, True, "sent to bob"),
    ({"type": "edit", "edited_action": {"name": "send_email", "args": {
        "to": "bob@acme.example", "subject": "Salary", "body": f"FYI: {SECRET}"}}}, False, "edited call was refused"),
], ids=["approve", "reject", "respond", "benign-edit", "smuggling-edit"])
def test_decisions_in_the_hitl_format(store, scorer, tmp_path, decision, sent, reply):
    audit = AuditLog(tmp_path / "audit.jsonl")
    agent, outbox, config, request = paused(store, scorer, f"d-{decision['type']}-{sent}", audit)
    result = agent.invoke(Command(resume={"decisions": [{**decision, "ifc_digest": request["digest"]}]}), config=config)
    answer = next(m for m in result["messages"] if getattr(m, "tool_call_id", None) == "call_email")
    assert bool(outbox) is sent and reply in str(answer.content)
    if sent and decision["type"] == "edit":
        assert outbox[0]["body"] == "Please ask HR."
    (record,) = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()
                 if json.loads(x).get("event") == "ifc.approval"]
    assert record["run"] == config["configurable"]["thread_id"] and record["tool_call_id"] == "call_email"
    assert record["decision"] == decision["type"] and record["args_digest"] and record["time"] > 0


def test_llamaindex_approvals_show_the_call_and_bind_to_it(store, scorer, tmp_path):
    from llamaindex_ifc import IFCApprovalRequired, IFCApprovalResponse, IFCEventHandler
    from llamaindex_ifc._demo import hr_agent as li_agent

    audit = AuditLog(tmp_path / "audit.jsonl")
    ifc = IFCEventHandler.create(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL, audit=audit).attach()
    try:
        agent, outbox = li_agent(store, SALARY, ifc, on_violation="approve")
        asked = []

        async def run():
            handler = agent.run(user_msg=SALARY.text)
            async for event in handler.stream_events():
                if isinstance(event, IFCApprovalRequired):
                    asked.append(event)
                    if len(asked) == 1:  # a stale answer first: not taken, asked again
                        handler.ctx.send_event(IFCApprovalResponse(waiter_id=event.waiter_id, digest="stale",
                                                                   approve=True))
                    else:
                        handler.ctx.send_event(IFCApprovalResponse(
                            waiter_id=event.waiter_id, digest=event.digest, decision="edit",
                            edited_args={**SALARY.email, "body": "Please ask HR."}))
            await handler

        asyncio.run(run())
        first, second = asked
        assert first.args == SALARY.email and first.tool_call_id == "call_email" and first.digest
        assert second.problem and "digest" in second.problem
        assert outbox == [{**SALARY.email, "body": "Please ask HR."}]
        (record,) = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()
                     if json.loads(x).get("event") == "ifc.approval"]
        assert record["tool_call_id"] == "call_email" and record["decision"] == "edit" and record["run"]
    finally:
        ifc.detach()
