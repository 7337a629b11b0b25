"""Streaming query engines get their decision when the stream ends; the answer's label is on the
response under a key that no document uses (issue 15)."""

import asyncio

import pytest

from ifc_core.demo import QUERY_LABEL
from llamaindex_ifc import ANSWER_KEY, IFCLLM, IFCRetriever

from .fakes import AnswerBook, engine

pytestmark = pytest.mark.model
Q = "When is the office open?"
ANSWER = "The Acme office is open from 9 am to 6 pm, Monday to Friday."


def streaming_engine(store, llm):
    qe = engine(IFCRetriever.from_store(store), llm)
    qe._response_synthesizer._streaming = True
    return qe


def only_decision(ifc):
    (decision,) = [d for _, st in ifc.tracker.runs() for d in st.decisions]
    return decision


def test_a_streamed_answer_is_labelled_when_the_stream_ends(store, ifc):
    response = streaming_engine(store, AnswerBook(answers={Q: ANSWER}, prompts=[])).query(Q)
    assert not [d for _, st in ifc.tracker.runs() for d in st.decisions]  # nothing generated yet
    assert "".join(response.response_gen) == ANSWER
    decision = only_decision(ifc)
    assert decision.label == QUERY_LABEL and decision.admitted == ["faq"]
    assert response.metadata[ANSWER_KEY]["label"] == QUERY_LABEL.to_json()


def test_an_async_streamed_answer_is_labelled_when_the_stream_ends(store, ifc):
    async def run():
        response = await streaming_engine(store, AnswerBook(answers={Q: ANSWER}, prompts=[])).aquery(Q)
        return response, "".join([t async for t in response.async_response_gen()])

    response, text = asyncio.run(run())
    assert text == ANSWER and only_decision(ifc).label == QUERY_LABEL
    assert response.metadata[ANSWER_KEY]["admitted"] == ["faq"]


def test_the_answers_label_is_on_the_response_not_mixed_with_the_documents(store, ifc):
    response = engine(IFCRetriever.from_store(store), IFCLLM(inner=AnswerBook(answers={Q: ANSWER}, prompts=[]),
                                                            ifc=ifc)).query(Q)
    answer = response.metadata[ANSWER_KEY]
    assert answer["label"] == QUERY_LABEL.to_json() and answer["mode"] == "enforce"
    assert answer["decision"]["regenerated"] and "ifc_label" not in response.metadata
