"""`IFCChatModel` for agents: as the model of `create_agent` and of a hand-written `StateGraph`
with `ToolNode`, with tools bound, streaming only the released answer, LangSmith parameters
passed through, and a generating model that is not the scorer's."""

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from ifc_core import PermissivePropagator
from ifc_core.demo import MIXED, POLICY, QUERY_LABEL, REQUESTS
from langchain_ifc import IFCCallbackHandler, IFCChatModel, labelled_retriever_tool
from langchain_ifc._demo import ContextAgentModel, chroma_retriever

pytestmark = pytest.mark.model


def tools_and_outbox(store):
    outbox = []

    @tool
    def send_email(to: str, subject: str, body: str) -> str:
        """Send an email."""
        outbox.append({"to": to, "subject": subject, "body": body})
        return f"sent to {to}"

    return [labelled_retriever_tool(chroma_retriever(store), "search_docs", "Search the company documents."),
            send_email], outbox


@pytest.mark.parametrize("request_", [*REQUESTS, MIXED], ids=["faq", "salary", "injection", "mixed"])
def test_as_the_model_of_create_agent(store, scorer, request_):
    handler = IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL)
    tools, outbox = tools_and_outbox(store)
    model = IFCChatModel(inner=ContextAgentModel(request=request_, prompts=[]), ifc=handler)
    create_agent(model, tools).invoke({"messages": [{"role": "user", "content": request_.text}]},
                                      config={"callbacks": [handler]})
    assert bool(outbox) is request_.expect_sent
    assert all("95,000" not in e["body"] and e["to"] == "bob@acme.example" for e in outbox)
    decisions = [d for _, st in handler.tracker.runs() for d in st.decisions]
    assert decisions and all(d.mode == "enforce" for d in decisions)  # nothing labelled twice


def test_in_a_state_graph_with_a_tool_node(store, scorer):
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    handler = IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL)
    tools, outbox = tools_and_outbox(store)
    model = IFCChatModel(inner=ContextAgentModel(request=MIXED, prompts=[]), ifc=handler).bind_tools(tools)
    graph = StateGraph(MessagesState)
    graph.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    graph.compile().invoke({"messages": [HumanMessage(MIXED.text)]}, config={"callbacks": [handler]})
    (email,) = outbox
    assert "9 am" in email["body"] and "95,000" not in email["body"]


def test_streaming_yields_only_the_released_answer(store, scorer):
    handler = IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL)
    model = IFCChatModel(inner=ContextAgentModel(request=REQUESTS[2], prompts=[]), ifc=handler)
    inner = model.inner
    chunks = list(model.stream([HumanMessage("Summarise the web page.")], config={"callbacks": [handler]}))
    (answer,) = [c for c in chunks if "ifc_label" in c.response_metadata]  # the rest: LangChain's empty last chunk
    assert answer.response_metadata["ifc_label"] == QUERY_LABEL.to_json()
    assert len(chunks) == 1 and answer.tool_calls[0]["name"] == "search_docs"
    assert len(inner.prompts) == 1  # nothing withheld: one generation, released whole


def test_langsmith_parameters_and_tools_pass_through(scorer):
    from langchain_core.language_models import FakeListChatModel

    handler = IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL)
    inner = FakeListChatModel(responses=["x"])
    model = IFCChatModel(inner=inner, ifc=handler)
    assert model._get_ls_params() == inner._get_ls_params()


def test_a_generating_model_that_is_not_the_scorer(store, scorer):
    """The RAG chain in enforce mode answered by a separately loaded copy of the model."""
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import pipeline

    from ifc_core import HFScorer
    from langchain_ifc._demo import run_rag

    other = HFScorer.load()  # its own model object: the scorer never generates here
    assert other.model is not scorer.model
    pipe = pipeline("text-generation", model=other.model, tokenizer=other.tokenizer, max_new_tokens=40,
                    do_sample=False, return_full_text=False)
    chat = ChatHuggingFace(llm=HuggingFacePipeline(pipeline=pipe), tokenizer=other.tokenizer)
    result = run_rag("When is the office open?", store, scorer, enforce=True, chat=chat)
    d = result["decision"]
    assert d.mode == "enforce" and d.admitted == ["faq"] and d.label == QUERY_LABEL and "9 am" in result["answer"]
