"""guard_tool's three modes, raise_on_violation, and the tool's unchanged face."""

import asyncio

import pytest
from llama_index.core.tools import FunctionTool

from ifc_core import IFCViolation
from ifc_core.demo import REQUESTS
from llamaindex_ifc import IFCApprovalRequired, IFCApprovalResponse, IFCViolationEvent, guard_tool, raise_on_violation
from llamaindex_ifc._demo import hr_agent

pytestmark = pytest.mark.model
FAQ, SALARY, INJECTION = REQUESTS


@pytest.mark.parametrize("approve", [True, False])
def test_approve_pauses_for_a_human(store, ifc, approve):
    agent, outbox = hr_agent(store, SALARY, ifc, on_violation="approve")
    asked = []

    async def run():
        handler = agent.run(user_msg=SALARY.text)
        async for event in handler.stream_events():
            if isinstance(event, IFCApprovalRequired):
                asked.append(event)
                handler.ctx.send_event(IFCApprovalResponse(waiter_id=event.waiter_id, digest=event.digest, approve=approve))
        await handler

    asyncio.run(run())
    (event,) = asked
    assert event.tool == "send_email" and event.label == {"conf": "confidential", "integrity": "trusted"}
    assert event.sink == {"conf": "public", "integrity": "trusted"} and "may not flow" in event.reason
    assert bool(outbox) is approve


def test_cancel_stops_the_run_and_raise_on_violation_raises(store, ifc):
    agent, outbox = hr_agent(store, INJECTION, ifc, on_violation="cancel")
    async def run():
        return await raise_on_violation(agent.run(user_msg=INJECTION.text))  # agent.run needs a loop

    with pytest.raises(IFCViolation) as err:
        asyncio.run(run())
    assert err.value.tool == "send_email" and err.value.label.to_json()["integrity"] == "untrusted"
    assert outbox == []


def test_cancel_puts_the_violation_on_the_stream(store, ifc):
    agent, outbox = hr_agent(store, SALARY, ifc, on_violation="cancel")

    async def run():
        handler = agent.run(user_msg=SALARY.text)
        events = [e async for e in handler.stream_events() if isinstance(e, IFCViolationEvent)]
        await handler
        return events

    (event,) = asyncio.run(run())
    assert event.tool == "send_email" and event.check.label.to_json()["conf"] == "confidential"
    assert outbox == []  # the call itself was refused even though nobody stopped the run


def test_guarded_tool_keeps_name_description_and_schema(ifc):
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        return "sent"

    tool = FunctionTool.from_defaults(fn=send_email)
    guarded = guard_tool(tool, ifc)
    assert guarded.metadata.name == "send_email" and guarded.metadata.description == tool.metadata.description
    assert guarded.metadata.get_parameters_dict() == tool.metadata.get_parameters_dict()
    with pytest.raises(ValueError, match="on_violation"):
        guard_tool(tool, ifc, on_violation="ignore")
