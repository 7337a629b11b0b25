"""Blocking, raising, interrupting and observing tool calls; custom events; enforce mode."""

import asyncio
import json
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from ifc_core import AuditLog, IFCViolation, PermissivePropagator
from ifc_core.demo import DOCUMENTS, LATTICE, POLICY, QUERY_LABEL, REQUESTS
from langchain_ifc import IFCCallbackHandler, IFCChatModel, IFCMiddleware, guard_tool, ifc_session

from langchain_ifc._demo import hr_agent

from .fakes import book_retriever

pytestmark = pytest.mark.model
FAQ, SALARY, INJECTION = REQUESTS


def user(request):
    return {"messages": [{"role": "user", "content": request.text}]}


class Events(BaseCallbackHandler):
    def __init__(self):
        self.seen = []

    def on_custom_event(self, name, data, **kwargs):
        self.seen.append((name, data))


def middleware(scorer, mode):
    return IFCMiddleware(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL, on_violation=mode)


def test_middleware_raise_and_events(store, scorer):
    agent, outbox = hr_agent(store, SALARY, middleware=[middleware(scorer, "raise")])
    events = Events()
    with pytest.raises(IFCViolation) as err:
        agent.invoke(user(SALARY), config={"callbacks": [events]})
    assert err.value.tool == "send_email" and err.value.check.tool_call_id == "call_email"
    assert err.value.label.to_json() == {"conf": "confidential", "integrity": "trusted"}
    assert outbox == []
    names = [n for n, _ in events.seen]
    assert "ifc.label" in names and "ifc.violation" in names
    violation = dict(events.seen)["ifc.violation"]
    assert violation["tool"] == "send_email" and violation["allowed"] is False


@pytest.mark.parametrize("approve", [True, False])
def test_middleware_interrupt_resumes(store, scorer, approve):
    agent, outbox = hr_agent(store, SALARY, middleware=[middleware(scorer, "interrupt")],
                             checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": f"t-{approve}"}}
    paused = agent.invoke(user(SALARY), config=config)
    (pending,) = paused["__interrupt__"]
    assert pending.value["type"] == "ifc_approval" and pending.value["tool"] == "send_email"
    assert pending.value["label"] == {"conf": "confidential", "integrity": "trusted"}
    assert pending.value["sink"] == {"conf": "public", "integrity": "trusted"} and "reason" in pending.value
    assert outbox == []
    agent.invoke(Command(resume={"approve": approve, "ifc_digest": pending.value["digest"]}), config=config)
    assert bool(outbox) is approve


def test_middleware_async_blocks(store, scorer):
    agent, outbox = hr_agent(store, INJECTION, middleware=[middleware(scorer, "block")])
    result = asyncio.run(agent.ainvoke(user(INJECTION)))
    reply = [m for m in result["messages"] if getattr(m, "tool_call_id", None) == "call_email"][0]
    assert reply.status == "error" and "untrusted" in reply.content and outbox == []


def test_callback_handler_blocks_under_invoke_and_ainvoke(store, scorer, tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    handler = IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL, audit=audit)
    agent, outbox = hr_agent(store, SALARY)
    with pytest.raises(IFCViolation):
        agent.invoke(user(SALARY), config={"callbacks": [handler]})
    assert outbox == []
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [x.get("event", x.get("mode")) for x in lines] == ["estimate", "estimate", "ifc.violation"]
    assert lines[-1]["tool"] == "send_email" and lines[-1]["label"] == {"conf": "confidential", "integrity": "trusted"}
    agent, outbox = hr_agent(store, SALARY)  # a fresh script
    with pytest.raises(IFCViolation):
        asyncio.run(agent.ainvoke(user(SALARY), config={"callbacks": [handler]}))
    assert outbox == []


def test_callback_handler_lets_the_faq_email_through(store, handler):
    agent, outbox = hr_agent(store, FAQ)
    agent.invoke(user(FAQ), config={"callbacks": [handler]})
    assert len(outbox) == 1


def test_ifc_session_attaches_without_config(store, scorer):
    agent, outbox = hr_agent(store, SALARY)
    with ifc_session(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL) as ifc:
        with pytest.raises(IFCViolation):
            agent.invoke(user(SALARY))
    assert outbox == [] and any(c.tool == "send_email" and not c.allowed
                                for _, st in ifc.tracker.runs() for c in st.checks)
    agent, outbox = hr_agent(store, SALARY)
    agent.invoke(user(SALARY))  # outside the session nothing is attached
    assert len(outbox) == 1


@pytest.mark.parametrize("request_, sent", [(FAQ, True), (SALARY, False)], ids=["faq", "salary"])
def test_guard_tool_in_an_agent(store, scorer, request_, sent):
    observer = IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL, enforce=False)
    agent, outbox = hr_agent(store, request_, guard=lambda t: guard_tool(t, observer))
    result = agent.invoke(user(request_), config={"callbacks": [observer]})
    reply = [m for m in result["messages"] if getattr(m, "tool_call_id", None) == "call_email"][0]
    assert bool(outbox) is sent
    if not sent:
        assert reply.status == "error" and "IFC violation" in reply.content


def test_guard_tool_keeps_the_schema_and_refuses_outside_a_run(handler):
    @tool
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        return "sent"

    guarded = guard_tool(send_email, handler)
    assert (guarded.name, guarded.description, guarded.args) == (send_email.name, send_email.description, send_email.args)
    out = guarded.invoke({"name": "send_email", "args": FAQ.email, "id": "c9", "type": "tool_call"})
    assert out.status == "error" and "IFC violation" in out.content  # no run, no label: checked as ⊤


class RecordingModel(BaseChatModel):
    """Answers with a fixed text and records every prompt it was given."""

    answer: str
    prompts: list = []

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        self.prompts.append("\n".join(str(m.content) for m in messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.answer))])


def static_retriever():
    """The scenario's documents from a fake store, through an `IFCRetriever`."""
    return book_retriever({"When is the office open?": [(d.id, d.text, d.label) for d in DOCUMENTS]}, LATTICE)


def test_enforce_mode_regenerates_without_withheld_sources(handler):
    inner = RecordingModel(answer="The Acme office is open from 9 am to 6 pm, Monday to Friday.", prompts=[])

    def prompt(inputs):
        context = "\n\n".join(d.page_content for d in inputs["docs"])
        return [SystemMessage("Answer from the documents."),
                HumanMessage(f"{context}\n\nQuestion: {inputs['question']}")]

    chain = ({"docs": static_retriever(), "question": RunnablePassthrough()} | RunnableLambda(prompt)
             | IFCChatModel(inner=inner, ifc=handler))
    message = chain.invoke("When is the office open?", config={"callbacks": [handler]})
    assert message.response_metadata["ifc_label"] == {"conf": "public", "integrity": "trusted"}
    assert message.response_metadata["ifc_admitted"] == ["faq"]
    first, second = inner.prompts
    for d in DOCUMENTS:
        assert d.text in first
        assert (d.text in second) is (d.id == "faq")
