"""The HR scenario in LlamaIndex, and parity with the LangChain adapter on the same cases."""

import pytest

from ifc_core.demo import DOCUMENTS, REQUESTS
from llamaindex_ifc._demo import run_agent_request, run_query_engine

from .fakes import AnswerBook, engine

pytestmark = pytest.mark.model
EXPECTED = [("public/trusted", True), ("confidential/trusted", False), ("public/untrusted", False)]


@pytest.mark.parametrize("request_, expected", list(zip(REQUESTS, EXPECTED)), ids=["faq", "salary", "injection"])
def test_agent_requests(store, ifc, request_, expected):
    outcome = run_agent_request(request_, store, ifc)
    assert (outcome.permissive, outcome.sent) == expected
    assert outcome.conservative == "confidential/untrusted"
    if not outcome.sent:
        assert "IFC violation" in outcome.reason and "send_email" in outcome.reason


def test_query_engine_on_the_embedded_model(store, scorer, ifc):
    estimate = run_query_engine("When is the office open?", store, scorer, ifc)
    d = estimate["decision"]
    assert "9 am" in estimate["answer"] and d.mode == "estimate" and d.admitted == ["faq"]
    assert d.label.to_json() == {"conf": "public", "integrity": "trusted"}
    enforced = run_query_engine("When is the office open?", store, scorer, ifc, enforce=True)
    e = enforced["decision"]
    assert e.mode == "enforce" and e.regenerated and e.admitted == ["faq"] and "9 am" in enforced["answer"]


def test_enforce_regeneration_prompt_holds_only_admitted_sources(store, ifc):
    from llamaindex_ifc import IFCRetriever
    from llamaindex_ifc._llm import IFCLLM

    q = "When is the office open?"
    inner = AnswerBook(answers={q: "The Acme office is open from 9 am to 6 pm, Monday to Friday."}, prompts=[])
    response = engine(IFCRetriever.from_chroma(store), IFCLLM(inner=inner, ifc=ifc)).query(q)
    assert response.response.startswith("The Acme office")
    first, second = inner.prompts
    for doc in DOCUMENTS:
        assert doc.text in first
        assert (doc.text in second) is (doc.id == "faq")


@pytest.mark.parametrize("request_, expected", list(zip(REQUESTS, EXPECTED)), ids=["faq", "salary", "injection"])
def test_react_agent(store, ifc, request_, expected):
    import asyncio
    import json

    from llama_index.core.agent.workflow import ReActAgent
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.tools import FunctionTool

    from ifc_core.demo import short
    from llamaindex_ifc import IFCRetriever, guard_tool, labelled_retriever_tool

    outbox = []

    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        outbox.append(to)
        return "sent"

    turns = iter([
        f"Thought: I need to search.\nAction: search_docs\nAction Input: {json.dumps({'query': request_.search})}",
        f"Thought: Now I send the email.\nAction: send_email\nAction Input: {json.dumps(request_.email)}",
        "Thought: I can answer without using any more tools.\nAnswer: Done.",
    ])
    llm = MockFunctionCallingLLM(response_generator=lambda messages, **kw: ChatMessage(role="assistant", content=next(turns)))
    agent = ReActAgent(llm=llm, tools=[labelled_retriever_tool(IFCRetriever.from_chroma(store), "search_docs", "Search."),
                                       guard_tool(FunctionTool.from_defaults(fn=send_email), ifc)])

    async def run():
        return await agent.run(user_msg=request_.text)

    asyncio.run(run())
    ((_, state),) = ifc.tracker.runs()
    (check,) = state.checks
    assert (short(check.label), bool(outbox)) == expected and check.allowed is expected[1]
