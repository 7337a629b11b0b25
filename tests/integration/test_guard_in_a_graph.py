"""`guard_tool` in a hand-written `StateGraph` with `ToolNode` and the default callback handler:
the refusal is the tool's error result, and the call gets the same label as through the
middleware and LlamaIndex (issue 15)."""

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from ifc_core import PermissivePropagator
from ifc_core.demo import POLICY, QUERY_LABEL, REQUESTS, short
from langchain_ifc import IFCCallbackHandler, guard_tool, labelled_retriever_tool
from langchain_ifc._demo import ScriptedChatModel, chroma_retriever, run_agent_request

pytestmark = pytest.mark.model


def graph_request(request, store, handler):
    outbox = []

    @tool
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        outbox.append(body)
        return f"sent to {to}"

    tools = [labelled_retriever_tool(chroma_retriever(store), "search_docs", "Search the company documents."),
             guard_tool(send_email, handler, on_violation="error")]
    model = ScriptedChatModel(responses=[
        AIMessage("", tool_calls=[{"name": "search_docs", "args": {"query": request.search}, "id": "call_search"}]),
        AIMessage("", tool_calls=[{"name": "send_email", "args": request.email, "id": "call_email"}]),
        AIMessage("Done."),
    ])
    graph = StateGraph(MessagesState)
    graph.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    result = graph.compile().invoke({"messages": [HumanMessage(request.text)]}, config={"callbacks": [handler]})
    reply = next(m for m in result["messages"] if isinstance(m, ToolMessage) and m.tool_call_id == "call_email")
    check = next(c for _, st in handler.tracker.runs() for c in st.checks if c.tool_call_id == "call_email")
    return check, outbox, reply


@pytest.mark.parametrize("request_", REQUESTS, ids=["faq", "salary", "injection"])
def test_guard_tool_in_a_graph_returns_the_error_and_labels_as_the_others(store, scorer, request_):
    from llamaindex_ifc import IFCEventHandler
    from llamaindex_ifc._demo import run_agent_request as llamaindex_request

    handler = IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL)
    check, outbox, reply = graph_request(request_, store, handler)
    assert bool(outbox) is request_.expect_sent
    if not request_.expect_sent:
        assert reply.status == "error" and "IFC violation" in reply.content  # the tool's result, no crash
    middleware = run_agent_request(request_, store, scorer)
    ifc = IFCEventHandler.create(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL).attach()
    try:
        li = llamaindex_request(request_, store, ifc)
    finally:
        ifc.detach()
    assert short(check.label) == middleware.permissive == li.permissive
