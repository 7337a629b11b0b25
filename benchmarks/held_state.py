"""Held state and memory over many runs: they must stay bounded (issue 10, path 10).

Runs N agent requests (default 10,000) through `IFCCallbackHandler`, `IFCMiddleware` and
LlamaIndex's `IFCEventHandler` with `guard_tool`, every one making a tool call that the policy
blocks, and prints the state each one holds and the process RSS every N/10 runs. Labels come from
the conservative propagator (no model): what is measured is the bookkeeping, not the scorer.

    .venv/bin/python benchmarks/held_state.py [N]
"""

from __future__ import annotations

import asyncio
import resource
import sys
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

from ifc_core import ConservativePropagator, IFCViolation, Policy
from ifc_core.demo import LATTICE, print_table
from langchain_ifc import IFCCallbackHandler, IFCMiddleware
from llamaindex_ifc import IFCEventHandler, guard_tool

INTERNAL = LATTICE.label({"conf": "internal", "integrity": "trusted"})  # every request is above the sink
POLICY = Policy(LATTICE, sinks={"send_email": LATTICE.bottom})


class Mailer(BaseChatModel):
    """Emails the user's last message, then says Done."""

    @property
    def _llm_type(self) -> str:
        return "mailer"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Mailer:
        return self

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        if messages[-1].type == "tool":
            return ChatResult(generations=[ChatGeneration(message=AIMessage("Done."))])
        text = str(messages[-1].content)
        call = {"name": "send_email", "args": {"body": text}, "id": f"call-{text}"}
        return ChatResult(generations=[ChatGeneration(message=AIMessage("", tool_calls=[call]))])


@tool
def send_email(body: str) -> str:
    """Send an email."""
    return "sent"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(n: int) -> None:
    prop = ConservativePropagator()
    handler = IFCCallbackHandler(prop, POLICY, query_label=INTERNAL)
    middleware = IFCMiddleware(prop, POLICY, query_label=INTERNAL)
    li = IFCEventHandler.create(prop, POLICY, query_label=INTERNAL).attach()
    for t in (handler.tracker, middleware.tracker, li.tracker):
        t.max_runs = 256
    plain = create_agent(Mailer(), [send_email])
    guarded = create_agent(Mailer(), [send_email], middleware=[middleware])

    def li_agent(i: int) -> FunctionAgent:
        turn = {"n": 0}

        def respond(messages: Any, **kw: Any) -> ChatMessage:
            turn["n"] += 1
            if turn["n"] > 1:
                return ChatMessage(role="assistant", content="Done.")
            return ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id=f"c{i}", tool_name="send_email",
                                                                        tool_kwargs={"body": f"r{i}"})])

        email = guard_tool(FunctionTool.from_defaults(fn=lambda body: "sent", name="send_email",
                                                      description="Send an email."), li)
        return FunctionAgent(tools=[email], llm=MockFunctionCallingLLM(response_generator=respond))

    rows = [("runs", "callback: runs/run ids/tools", "middleware: runs/answers", "llamaindex: runs/spans", "RSS MB")]
    for i in range(1, n + 1):
        request = {"messages": [{"role": "user", "content": f"request {i}"}]}
        try:
            plain.invoke(request, config={"callbacks": [handler]})
        except IFCViolation:
            pass
        guarded.invoke(request)
        if i % 10 == 0:  # LlamaIndex agents are slower to run: one in ten
            asyncio.run(_li(li_agent(i)))
        if i % max(n // 10, 1) == 0:
            h, m, lh = handler.held(), middleware.tracker.held(), li.tracker.held()
            rows.append((i, f"{h['runs']}/{h['run_ids']}/{h['tools']}", f"{m['runs']}/{m['answers_by_text']}",
                         f"{lh['runs']}/{len(li._spans._roots)}", f"{rss_mb():.0f}"))
    li.detach()
    print_table(rows, sys.stdout)
    print("\nHeld runs stay at most max_runs (256); running tools and run ids return to 0; RSS levels off\n"
          "once the bounded books are full.")


async def _li(agent: FunctionAgent) -> None:
    await agent.run(user_msg="go")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
