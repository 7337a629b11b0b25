"""One loaded model shared by threads gives the same results as sequential runs."""

import threading

import pytest

from ifc_core import LabelledSource

from .facts import CONF, ONE_DOC, READERS, TWO_DOCS, docs

pytestmark = pytest.mark.model


def test_two_threads_match_sequential(permissive):
    jobs = [
        (LabelledSource("q", ONE_DOC[0], CONF.label("public")),
         docs(CONF, {"launch": "secret", "capital": "internal", "salary": "confidential"}), ONE_DOC[1]),
        (LabelledSource("q", TWO_DOCS[0], READERS.bottom),
         docs(READERS, {"capital": ["alice", "bob", "carol"], "mayor": ["alice", "bob", "dave"],
                        "launch": ["dave"]}), TWO_DOCS[1]),
    ]
    sequential = [permissive.label(*job) for job in jobs]
    threaded = [None, None]

    def work(i):
        threaded[i] = permissive.label(*jobs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, t in zip(sequential, threaded):
        assert t.label == s.label and t.admitted == s.admitted
        assert [c.mean_nll for c in t.candidates] == [c.mean_nll for c in s.candidates]
    assert sequential[0].label == CONF.label("internal")
    assert sequential[1].label == READERS.label(["alice", "bob"])
