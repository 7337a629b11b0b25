"""A scripted agent over the HR store, for the adapter tests."""

from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from langchain_ifc import labelled_retriever_tool
from langchain_ifc._demo import ScriptedChatModel, chroma_retriever


def hr_agent(store, request, *, middleware=(), checkpointer=None, guard=None):
    """(agent, outbox): search the store, then send the request's email (`guard` wraps send_email)."""
    outbox = []

    @tool
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        outbox.append({"to": to, "subject": subject, "body": body})
        return f"sent to {to}"

    search = labelled_retriever_tool(chroma_retriever(store), "search_docs", "Search the company documents.")
    model = ScriptedChatModel(responses=[
        AIMessage("", tool_calls=[{"name": "search_docs", "args": {"query": request.search}, "id": "call_search"}]),
        AIMessage("", tool_calls=[{"name": "send_email", "args": request.email, "id": "call_email"}]),
        AIMessage("Done."),
    ])
    tools = [search, guard(send_email) if guard else send_email]
    return create_agent(model, tools, middleware=list(middleware), checkpointer=checkpointer), outbox
