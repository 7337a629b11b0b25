"""The same cases through both adapters give identical labels and decisions."""

import asyncio
import uuid

import pytest

from ifc_core._scenario import LATTICE, REQUESTS
from langchain_ifc._demo import run_agent_request as langchain_request
from llamaindex_ifc._demo import run_agent_request as llamaindex_request

from ..langchain import fakes as lc
from . import fakes as li

pytestmark = pytest.mark.model

INTERNAL = LATTICE.label({"conf": "internal", "integrity": "trusted"})
SECRET = LATTICE.label({"conf": "confidential", "integrity": "untrusted"})
PUBLIC = LATTICE.label({"conf": "public", "integrity": "trusted"})
Q = "What is the locker code of team Heron?"
BOOK = {Q: [("locker", "The locker code of team Heron is 4821.", INTERNAL),
            ("memo", "Team Heron meets every Monday in room 4.", SECRET),
            ("faq", "The office is open from 9 am to 6 pm.", PUBLIC)]}
ANSWER = "The locker code of team Heron is 4821."


def test_agent_scenario_parity(store, scorer, ifc):
    for request in REQUESTS:
        a = langchain_request(request, store, scorer)
        b = llamaindex_request(request, store, ifc)
        assert (a.permissive, a.conservative, a.sent) == (b.permissive, b.conservative, b.sent), request.text


def test_rag_parity(handler, ifc):
    run_id = uuid.uuid4()
    lc.rag_chain(lc.book_retriever(BOOK, LATTICE), lc.AnswerBook(answers={Q: ANSWER})).invoke(
        Q, config={"callbacks": [handler], "run_id": run_id})
    (from_langchain,) = handler.decisions(run_id)
    li.engine(li.BookRetriever(BOOK, LATTICE), li.AnswerBook(answers={Q: ANSWER}, prompts=[])).query(Q)
    (from_llamaindex,) = [d for _, st in ifc.tracker.runs() for d in st.decisions]
    for field in ("label", "conservative_label", "admitted", "withheld", "output"):
        assert getattr(from_langchain, field) == getattr(from_llamaindex, field), field
    assert from_langchain.label == INTERNAL
    assert [c.label for c in from_langchain.candidates] == [c.label for c in from_llamaindex.candidates]


@pytest.mark.parametrize("name", ["knnlm", "introspection"])
def test_propagators_chosen_by_name_in_both_adapters(store, scorer, name):
    from ifc_core import PROPAGATORS
    from ifc_core._scenario import POLICY, QUERY_LABEL
    from llamaindex_ifc import IFCEventHandler

    handler = IFCEventHandler.create(name, POLICY, query_label=QUERY_LABEL).attach()
    try:
        assert type(handler.tracker.propagator) is PROPAGATORS[name]
        assert handler.tracker.propagator.scorer is scorer  # the shared embedded model
        for request in REQUESTS:
            a = langchain_request(request, store, scorer, propagator=name)
            b = llamaindex_request(request, store, handler)
            assert (a.permissive, a.sent) == (b.permissive, b.sent)
            if request is not REQUESTS[0]:  # the salary and the injected page: never sent
                assert not a.sent
    finally:
        handler.detach()
