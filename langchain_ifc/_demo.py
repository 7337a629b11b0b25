"""The HR scenario in LangChain: an agent over labelled Chroma, and a RAG chain on a local model.

Run by `ifc demo` (registered under the ``llm_ifc.demos`` entry point) and by the tests.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel, FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool

from ifc_core import DEFAULT_SYSTEM, HFScorer, PermissivePropagator, Propagator
from ifc_core.demo import (LATTICE, POLICY, QUERY_LABEL, REQUESTS, Outcome, Request, enforce_table,
                                print_table, scenario_action, scenario_store, short)
from ifc_core.chroma import LabelledStore

from ._middleware import IFCMiddleware
from ._retriever import IFCRetriever, labelled_retriever_tool

__all__ = ["ContextAgentModel", "ScriptedChatModel", "hr_agent", "run_agent_request", "run_rag", "run_demo"]


class ScriptedChatModel(FakeMessagesListChatModel):
    """A fake chat model that plays back tool calls (the embedded model cannot call tools)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self


class ContextAgentModel(BaseChatModel):
    """A fake agent model whose every action is computed from its context (`scenario_action`):
    it searches, emails what it finds, and obeys instructions it reads. Enforce mode's
    regenerations, which show it less, therefore change what it does."""

    request: Any
    prompts: list = []

    @property
    def _llm_type(self) -> str:
        return "context-agent"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ContextAgentModel:
        return self

    def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.prompts.append(messages)
        results = [str(m.content) for m in messages if isinstance(m, ToolMessage) and m.name == "search_docs"]
        sent = any(isinstance(m, ToolMessage) and m.name == "send_email" for m in messages)
        action = scenario_action(self.request, results, sent)
        if isinstance(action, str):
            return ChatResult(generations=[ChatGeneration(message=AIMessage(action))])
        call = {**action, "id": "call_search" if action["name"] == "search_docs" else "call_email"}
        return ChatResult(generations=[ChatGeneration(message=AIMessage("", tool_calls=[call]))])


def chroma_retriever(store: LabelledStore, k: int = 4) -> IFCRetriever:
    return IFCRetriever.from_store(store, clearance=LATTICE.top, k=k)


def hr_agent(store: LabelledStore, request: Request, *, middleware: Sequence[Any] = (),
             checkpointer: Any = None, guard: Callable[[BaseTool], BaseTool] | None = None,
             model: Any = None) -> tuple[Any, list]:
    """(agent, outbox): a scripted agent that searches `store`, then sends the request's email
    (or `model`'s agent, e.g. a `ContextAgentModel`).

    `guard` wraps the `send_email` tool (e.g. with `guard_tool`); `outbox` lists the emails sent.
    """
    outbox: list[dict[str, Any]] = []

    @tool
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        outbox.append({"to": to, "subject": subject, "body": body})
        return f"sent to {to}"

    search = labelled_retriever_tool(chroma_retriever(store), "search_docs", "Search the company documents.")
    model = model or ScriptedChatModel(responses=[
        AIMessage("", tool_calls=[{"name": "search_docs", "args": {"query": request.search}, "id": "call_search"}]),
        AIMessage("", tool_calls=[{"name": "send_email", "args": request.email, "id": "call_email"}]),
        AIMessage("Done."),
    ])
    tools = [search, guard(send_email) if guard else send_email]
    return create_agent(model, tools, middleware=list(middleware), checkpointer=checkpointer), outbox


def run_agent_request(request: Request, store: LabelledStore, scorer: HFScorer, *,
                      on_violation: str = "block", propagator: Propagator | str | None = None,
                      mode: str = "estimate") -> Outcome:
    """One request through a `create_agent` agent with `IFCMiddleware` (labelled by `propagator`,
    default the permissive one on `scorer`): a scripted model in estimate mode, a
    `ContextAgentModel` in enforce mode (regenerations must change what the model does)."""
    middleware = IFCMiddleware(propagator or PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL,
                               on_violation=on_violation, mode=mode)  # type: ignore[arg-type]
    model = ContextAgentModel(request=request, prompts=[]) if mode == "enforce" else None
    agent, outbox = hr_agent(store, request, middleware=[middleware], model=model)
    result = agent.invoke({"messages": [{"role": "user", "content": request.text}]})
    decision = middleware.tracker.decision_for_call("call_email")
    reply = next((m for m in result["messages"] if isinstance(m, ToolMessage) and m.tool_call_id == "call_email"),
                 result["messages"][-1])
    if decision is None:  # enforce mode: the released answer made no email at all
        decision = middleware.tracker.decisions_of(next(k for k, _ in reversed(middleware.tracker.runs())))[-1]
    return Outcome(request, short(decision.label), short(decision.conservative_label), bool(outbox),
                   str(reply.content))


def run_rag(question: str, store: LabelledStore, scorer: HFScorer, *, enforce: bool = False,
            chat: Any = None) -> dict[str, Any]:
    """A plain RAG chain answered by the embedded model through langchain-huggingface (or by
    `chat`); labels from `scorer`."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from ._callback import IFCCallbackHandler
    from ._chat_model import IFCChatModel
    from ._models import embedded_chat_model

    if chat is None:
        chat = embedded_chat_model(scorer, max_new_tokens=40)
    handler = IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL)
    if enforce:
        chat = IFCChatModel(inner=chat, ifc=handler)
    prompt = ChatPromptTemplate.from_messages([
        ("system", DEFAULT_SYSTEM),
        ("human", "Documents:\n{context}\n\nQuestion: {question}"),
    ])
    format_docs = lambda docs: "\n\n".join(d.page_content for d in docs)  # noqa: E731
    chain = ({"context": chroma_retriever(store) | format_docs, "question": RunnablePassthrough()}
             | prompt | chat | StrOutputParser())
    run_id = uuid.uuid4()
    answer = chain.invoke(question, config={"callbacks": [handler], "run_id": run_id})
    return {"answer": answer, "decision": handler.decisions(run_id)[-1]}


def show_approval(store: LabelledStore, scorer: HFScorer, out: TextIO) -> None:
    """The salary email paused for a reviewer, who sees the exact call and rejects it."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    salary = REQUESTS[1]
    middleware = IFCMiddleware(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL, on_violation="interrupt")
    agent, outbox = hr_agent(store, salary, middleware=[middleware], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "demo-approval"}}
    (pending,) = agent.invoke({"messages": [{"role": "user", "content": salary.text}]}, config=config)["__interrupt__"]
    request = pending.value
    print("\n=== LangChain: a reviewer decides (on_violation='interrupt', the HITL decision format) ===", file=out)
    print(f"  tool:    {request['tool']} (call {request['tool_call_id']})\n  args:    {request['args']}\n"
          f"  label:   {request['label']}\n  sink:    {request['sink']}\n  digest:  {request['digest']}", file=out)
    answer = {"decisions": [{"type": "reject", "message": "no salaries by email"}], "ifc_digest": request["digest"]}
    agent.invoke(Command(resume=answer), config=config)
    print(f"  answer:  {answer}\n  email:   {'SENT' if outbox else 'not sent'} (the answer must echo the digest: a call "
          "changed since it was shown is asked again)", file=out)


def run_demo(scorer: HFScorer | None = None, out: TextIO = sys.stdout) -> None:
    """Print the LangChain part of `ifc demo`."""
    scorer = scorer or HFScorer.load()
    store = scenario_store()
    print("\n=== LangChain: an agent over labelled Chroma, with IFCMiddleware ===", file=out)
    print("send_email accepts only public/trusted content. The agent retrieves all four documents,\n"
          "then calls send_email (its tool calls are scripted; labels come from the real scorer).\n", file=out)
    rows = [("request", "permissive", "conservative", "email", "why")]
    for r in REQUESTS:
        o = run_agent_request(r, store, scorer)
        rows.append((r.text, o.permissive, o.conservative, "SENT" if o.sent else "BLOCKED", r.why))
    print_table(rows, out)
    print("\nWith conservative labels every email would have been blocked: every prompt held the\n"
          "confidential and the untrusted document.", file=out)
    show_approval(store, scorer, out)
    enforce_table("LangChain", lambda r: run_agent_request(r, store, scorer, mode="enforce"), out)
    print("\n=== LangChain: a RAG chain answered by SmolLM2 through langchain-huggingface ===", file=out)
    for enforce in (False, True):
        res = run_rag("When is the office open?", store, scorer, enforce=enforce)
        d = res["decision"]
        print(f"  {'enforce ' if enforce else 'estimate'}: {res['answer']!r}\n"
              f"            label {short(d.label)} (conservative {short(d.conservative_label)}); "
              f"admitted {d.admitted}{'; regenerated' if d.regenerated else ''}", file=out)
