"""Both adapters with a served scorer: it is chosen through the propagator, nothing else changes."""

import uuid

import pytest

from ifc_core import PermissivePropagator
from ifc_core.demo import POLICY, QUERY_LABEL
from langchain_ifc import IFCCallbackHandler
from llamaindex_ifc import IFCEventHandler

from ..langchain import fakes as lc
from ..llamaindex import fakes as li
from ..llamaindex.test_parity import ANSWER, BOOK, INTERNAL, LATTICE, Q

pytestmark = [pytest.mark.model, pytest.mark.vllm]


def test_rag_through_both_adapters_on_the_served_scorer(served):
    propagator = PermissivePropagator(served)
    handler = IFCCallbackHandler(propagator, POLICY, query_label=QUERY_LABEL)
    run_id = uuid.uuid4()
    lc.rag_chain(lc.book_retriever(BOOK, LATTICE), lc.AnswerBook(answers={Q: ANSWER})).invoke(
        Q, config={"callbacks": [handler], "run_id": run_id})
    (from_langchain,) = handler.decisions(run_id)
    ifc = IFCEventHandler.create(propagator, POLICY, query_label=QUERY_LABEL).attach()
    try:
        li.engine(li.BookRetriever(BOOK, LATTICE), li.AnswerBook(answers={Q: ANSWER}, prompts=[])).query(Q)
        (from_llamaindex,) = [d for _, st in ifc.tracker.runs() for d in st.decisions]
    finally:
        ifc.detach()
    for d in (from_langchain, from_llamaindex):
        assert d.fallback_reason is None and d.model_id == "smollm2"
        assert d.label == INTERNAL and d.withheld == ["memo"]
