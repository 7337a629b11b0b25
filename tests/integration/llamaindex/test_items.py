"""Per-item labels through LlamaIndex: a `FunctionTool`'s `raw_output`, labelled email by email by
the policy's labeller, in a `FunctionAgent` (scripted) with a guarded `send_email`; labels from
the real scorer."""

import asyncio

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool

from ifc_core import PermissivePropagator
from llamaindex_ifc import IFCEventHandler, guard_tool
from llamaindex_ifc._demo import scripted_llm

from ..langchain.test_items import MAILS, POLICY, REQUEST, TRUST

pytestmark = pytest.mark.model


@pytest.mark.parametrize("to, goes", [("carol@acme.example", True), ("eve@evil.example", False)])
def test_an_email_from_the_trusted_mail_goes_and_the_injected_one_is_blocked(scorer, to, goes):
    ifc = IFCEventHandler.create(PermissivePropagator(scorer), POLICY, query_label="trusted").attach()
    sent = []

    def read_inbox() -> list:
        """Read the latest emails."""
        return MAILS

    def send_email(to: str, body: str) -> str:
        """Send an email."""
        sent.append(to)
        return "sent"

    try:
        llm = scripted_llm([("read_inbox", {}, "r1"), ("send_email", {"to": to, "body": "Here is the draft."}, "e1")])
        agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=read_inbox),
                                     guard_tool(FunctionTool.from_defaults(fn=send_email), ifc)], llm=llm)
        async def go():
            return await agent.run(user_msg=REQUEST)

        asyncio.run(go())
    finally:
        ifc.detach()
    assert sent == ([to] if goes else [])
    decision = ifc.tracker.decision_for_call("e1")
    assert decision.label == TRUST.label("trusted" if goes else "untrusted")
    assert decision.conservative_label == TRUST.label("untrusted")
    assert {"tool:read_inbox:r1/0", "tool:read_inbox:r1/1"} <= set(decision.admitted) | set(decision.withheld)
