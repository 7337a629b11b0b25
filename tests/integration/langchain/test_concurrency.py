"""20 concurrent runs through one handler: each run is labelled from its own documents only."""

import uuid

import pytest

from ifc_core.demo import LATTICE

from .fakes import AnswerBook, book_retriever, rag_chain

pytestmark = pytest.mark.model
TEAMS = ["Heron", "Falcon", "Otter", "Lynx", "Badger", "Marten", "Plover", "Ibis", "Vole", "Stoat",
         "Wren", "Egret", "Ferret", "Shrike", "Tern", "Kestrel", "Dormouse", "Newt", "Curlew", "Pika"]


def test_twenty_concurrent_runs_keep_their_own_sources(handler):
    internal = LATTICE.label({"conf": "internal", "integrity": "trusted"})
    secret = LATTICE.label({"conf": "confidential", "integrity": "untrusted"})
    book, answers, questions = {}, {}, []
    for i, team in enumerate(TEAMS):
        q = f"What is the locker code of team {team}?"
        code = 1000 + 37 * i
        book[q] = [(f"locker-{i}", f"The locker code of team {team} is {code}.", internal),
                   (f"memo-{i}", f"Team {team} meets every {['Monday', 'Friday'][i % 2]} in room {i}.", secret)]
        answers[q] = f"The locker code of team {team} is {code}."
        questions.append(q)
    chain = rag_chain(book_retriever(book, LATTICE), AnswerBook(answers=answers))
    run_ids = [uuid.uuid4() for _ in questions]
    chain.batch(questions, config=[{"callbacks": [handler], "run_id": r, "max_concurrency": 20} for r in run_ids])
    for i, run_id in enumerate(run_ids):
        (decision,) = handler.decisions(run_id)
        own = {f"locker-{i}", f"memo-{i}"}
        assert all(set(c.documents) <= own for c in decision.candidates), (i, decision.candidates)
        assert f"team {TEAMS[i]}" in decision.output
        assert decision.label == internal and decision.admitted == [f"locker-{i}"]
