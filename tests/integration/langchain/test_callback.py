"""The callback handler's events, thread scoping, and enforce mode with sources it cannot find."""

import uuid

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from ifc_core import FlowTracker, PermissivePropagator, PromptMessage
from ifc_core.demo import DOCUMENTS, LATTICE, POLICY, QUERY_LABEL

from .fakes import AnswerBook, book_retriever, rag_chain

pytestmark = pytest.mark.model
CONFIDENTIAL = LATTICE.label({"conf": "confidential", "integrity": "trusted"})
Q = "When is the office open?"
BOOK = {Q: [(d.id, d.text, d.label) for d in DOCUMENTS]}
ANSWER = "The Acme office is open from 9 am to 6 pm, Monday to Friday."


class Events(BaseCallbackHandler):
    def __init__(self):
        self.names = []

    def on_custom_event(self, name, data, **kwargs):
        self.names.append(name)


def test_label_event_reaches_other_handlers(handler):
    events = Events()
    chain = rag_chain(book_retriever(BOOK, LATTICE), AnswerBook(answers={Q: ANSWER}))
    run_id = uuid.uuid4()
    chain.invoke(Q, config={"callbacks": [handler, events], "run_id": run_id})
    assert events.names == ["ifc.label"]
    (decision,) = handler.decisions(run_id)
    assert decision.mode == "estimate" and decision.label == QUERY_LABEL and decision.admitted == ["faq"]


def test_state_follows_the_thread_not_the_run(handler):
    other = "Anything else?"
    book = {**BOOK, other: []}
    chain = rag_chain(book_retriever(book, LATTICE), AnswerBook(answers={Q: ANSWER, other: "Alice Smith earns 95,000 dollars a year."}))
    chain.invoke(Q, config={"callbacks": [handler], "metadata": {"thread_id": "conv-1"}})
    chain.invoke(other, config={"callbacks": [handler], "metadata": {"thread_id": "conv-1"}})
    chain.invoke(other, config={"callbacks": [handler], "metadata": {"thread_id": "conv-2"}})
    first_thread = handler.decisions(("thread", "conv-1"))
    # the first turn's documents are not in this prompt, so none can be withheld: all their labels count
    assert len(first_thread) == 2 and first_thread[-1].label == LATTICE.top
    (fresh,) = handler.decisions(("thread", "conv-2"))
    assert fresh.admitted == [] and fresh.conservative_label == QUERY_LABEL  # nothing of conv-1 leaks in


def test_sources_not_found_verbatim_always_count(permissive):
    faq, salaries = DOCUMENTS[1], DOCUMENTS[2]
    tracker = FlowTracker(permissive, POLICY, query_label=QUERY_LABEL)
    for run in ("reformatted", "verbatim"):
        tracker.begin(run, [Q])
        tracker.add_source(run, faq)
        tracker.add_source(run, salaries)
    prompt = f"Documents:\n{faq.text}\nSALARY TABLE (reformatted): alice smith, 95000\n\nQuestion: {Q}"
    decision = tracker.label_output("reformatted", ANSWER, prompt=[PromptMessage("user", prompt)])
    assert "faq" in decision.admitted + decision.withheld and "salaries" not in decision.admitted + decision.withheld
    assert decision.label >= CONFIDENTIAL  # the salary table's label counts: it could not be removed
    assert "salaries: not found verbatim in the prompt; its label always counts" in decision.notes
    located = tracker.label_output("verbatim", ANSWER, prompt=[PromptMessage("user", f"{faq.text}\n{salaries.text}\n\n{Q}")])
    assert located.label == QUERY_LABEL and located.withheld == ["salaries"]


def test_the_answers_label_without_run_ids(handler):
    chain = rag_chain(book_retriever(BOOK, LATTICE), AnswerBook(answers={Q: ANSWER}))
    with handler.track() as t:
        chain.invoke(Q, config={"callbacks": [handler]})
    assert t.label == QUERY_LABEL and t.decision.admitted == ["faq"] and len(t.decisions) == 1
    with handler.track() as nothing:
        pass
    assert nothing.label is None and nothing.decisions == []
