"""The HR scenario in LlamaIndex: a FunctionAgent over labelled Chroma, and a query engine on a
local model. Run by `ifc demo` (entry point ``llm_ifc.demos``) and by the tests."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any, TextIO

from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import BaseTool, FunctionTool

from ifc_core import HFScorer, PermissivePropagator
from ifc_core.demo import (POLICY, QUERY_LABEL, REQUESTS, Outcome, Request, enforce_table, print_table,
                                scenario_action, scenario_store, short)

from ._events import IFCEventHandler
from ._retriever import IFCRetriever, labelled_retriever_tool
from ._tools import guard_tool

__all__ = ["scripted_llm", "hr_agent", "run_agent_request", "local_llm", "run_query_engine", "run_demo"]


def scripted_llm(calls: list[tuple[str, dict[str, Any], str]]) -> MockFunctionCallingLLM:
    """A function-calling mock that makes `calls` (name, args, id) one turn each, then says Done."""
    turn = {"i": 0}

    def respond(messages: Any, **kwargs: Any) -> ChatMessage:
        i = turn["i"]
        turn["i"] += 1
        if i < len(calls):
            name, args, call_id = calls[i]
            return ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id=call_id, tool_name=name,
                                                                        tool_kwargs=args)])
        return ChatMessage(role="assistant", content="Done.")

    return MockFunctionCallingLLM(response_generator=respond)


def context_llm(request: Request) -> MockFunctionCallingLLM:
    """A function-calling mock whose every action is computed from its context (`scenario_action`):
    it searches, emails what it finds, and obeys instructions it reads."""

    def respond(messages: Any, **kwargs: Any) -> ChatMessage:
        tool_turns = [m for m in messages if str(getattr(m.role, "value", m.role)) == "tool"]
        names = {b.tool_call_id: b.tool_name for m in messages for b in m.blocks if isinstance(b, ToolCallBlock)}
        results = [m.content or "" for m in tool_turns if names.get(m.additional_kwargs.get("tool_call_id")) == "search_docs"]
        sent = any(names.get(m.additional_kwargs.get("tool_call_id")) == "send_email" for m in tool_turns)
        action = scenario_action(request, results, sent)
        if isinstance(action, str):
            return ChatMessage(role="assistant", content=action)
        call_id = "call_search" if action["name"] == "search_docs" else "call_email"
        return ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id=call_id, tool_name=action["name"],
                                                                    tool_kwargs=action["args"])])

    return MockFunctionCallingLLM(response_generator=respond)


def hr_agent(store: Any, request: Request, ifc: IFCEventHandler, *, on_violation: str = "error",
             guard: Callable[[BaseTool], BaseTool] | None = None, llm: Any = None) -> tuple[FunctionAgent, list]:
    """(agent, outbox): searches `store`, then sends the request's email through `guard_tool`
    (scripted; or `llm`'s agent, e.g. an `IFCLLM` around `context_llm`)."""
    outbox: list[dict[str, Any]] = []

    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        outbox.append({"to": to, "subject": subject, "body": body})
        return f"sent to {to}"

    email = FunctionTool.from_defaults(fn=send_email)
    guard = guard or (lambda t: guard_tool(t, ifc, on_violation=on_violation))  # type: ignore[arg-type]
    search = labelled_retriever_tool(IFCRetriever.from_store(store), "search_docs", "Search the company documents.")
    llm = llm or scripted_llm([("search_docs", {"query": request.search}, "call_search"),
                               ("send_email", request.email, "call_email")])
    return FunctionAgent(tools=[search, guard(email)], llm=llm), outbox


async def _run_agent(agent: FunctionAgent, text: str) -> str:
    handler = agent.run(user_msg=text)
    reason = ""
    async for event in handler.stream_events():
        if isinstance(event, ToolCallResult) and event.tool_name == "send_email":
            reason = str(event.tool_output.content)
    await handler
    return reason


def run_agent_request(request: Request, store: Any, ifc: IFCEventHandler, *, mode: str = "estimate") -> Outcome:
    """One request through a `FunctionAgent` with a guarded `send_email` (``on_violation="error"``):
    a scripted LLM in estimate mode, `context_llm` behind `IFCLLM` in enforce mode."""
    from ._llm import IFCLLM

    llm = IFCLLM(inner=context_llm(request), ifc=ifc) if mode == "enforce" else None
    agent, outbox = hr_agent(store, request, ifc, llm=llm)
    reason = asyncio.run(_run_agent(agent, request.text))
    decision = ifc.tracker.decision_for_call("call_email")
    if decision is None:  # enforce mode: the released answer made no email at all
        decision = next(st.decisions[-1] for _, st in reversed(ifc.tracker.runs()) if st.decisions)
    return Outcome(request, short(decision.label), short(decision.conservative_label), bool(outbox), reason)


def local_llm(scorer: HFScorer, max_new_tokens: int = 40) -> Any:
    """The embedded model as a LlamaIndex LLM (see `embedded_llm`)."""
    from ._models import embedded_llm

    return embedded_llm(scorer, max_new_tokens=max_new_tokens)


def run_query_engine(question: str, store: Any, scorer: HFScorer, ifc: IFCEventHandler, *,
                     enforce: bool = False) -> dict[str, Any]:
    """A plain `RetrieverQueryEngine` over labelled Chroma, answered by the embedded model."""
    from llama_index.core import PromptTemplate
    from llama_index.core.query_engine import RetrieverQueryEngine

    from ._llm import IFCLLM

    llm = local_llm(scorer)
    if enforce:
        llm = IFCLLM(inner=llm, ifc=ifc)
    qa = PromptTemplate("Documents:\n{context_str}\n\nQuestion: {query_str}")  # what a 135M model answers best
    engine = RetrieverQueryEngine.from_args(IFCRetriever.from_store(store), llm=llm, text_qa_template=qa)
    before = {id(d) for _, st in ifc.tracker.runs() for d in st.decisions}
    answer = str(engine.query(question))
    (decision,) = [d for _, st in ifc.tracker.runs() for d in st.decisions if id(d) not in before]
    return {"answer": answer, "decision": decision}


def _fresh_run(request: Request, store: Any, scorer: HFScorer) -> Outcome:
    ifc = IFCEventHandler.create(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL).attach()
    try:
        return run_agent_request(request, store, ifc, mode="enforce")
    finally:
        ifc.detach()


def run_demo(scorer: HFScorer | None = None, out: TextIO = sys.stdout) -> None:
    """Print the LlamaIndex part of `ifc demo`."""
    scorer = scorer or HFScorer.load()
    store = scenario_store()
    ifc = IFCEventHandler.create(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL).attach()
    try:
        print("\n=== LlamaIndex: a FunctionAgent over labelled Chroma, send_email behind guard_tool ===", file=out)
        rows = [("request", "permissive", "conservative", "email")]
        for r in REQUESTS:
            o = run_agent_request(r, store, ifc)
            rows.append((r.text, o.permissive, o.conservative, "SENT" if o.sent else "BLOCKED"))
        print_table(rows, out)
        enforce_table("LlamaIndex", lambda r: _fresh_run(r, store, scorer), out)
        print("\n=== LlamaIndex: a RetrieverQueryEngine answered by SmolLM2 (llama-index-llms-huggingface) ===",
              file=out)
        for enforce in (False, True):
            res = run_query_engine("When is the office open?", store, scorer, ifc, enforce=enforce)
            d = res["decision"]
            print(f"  {'enforce ' if enforce else 'estimate'}: {res['answer'].strip()!r}\n"
                  f"            label {short(d.label)} (conservative {short(d.conservative_label)}); "
                  f"admitted {d.admitted}{'; regenerated' if d.regenerated else ''}", file=out)
    finally:
        ifc.detach()
