"""The permissive propagator on the real embedded model: the label follows what the answer used."""

import pytest

from ifc_core import ConservativePropagator, LabelledSource

from .facts import CONF, ONE_DOC, PRODUCT, READERS, TWO_DOCS, docs

pytestmark = pytest.mark.model

PUB_T = {"conf": "public", "integrity": "trusted"}

CASES = [
    # lattice, query label, document labels, question/answer, expected label
    pytest.param(CONF, "public",
                 {"launch": "secret", "capital": "internal", "salary": "confidential", "recipe": "secret"},
                 ONE_DOC, "internal", id="chain-one"),
    pytest.param(CONF, "public",
                 {"launch": "secret", "capital": "internal", "mayor": "confidential", "salary": "secret",
                  "river": "public"},
                 TWO_DOCS, "confidential", id="chain-two"),
    pytest.param(READERS, ["alice", "bob", "carol", "dave"],
                 {"salary": ["alice"], "capital": ["alice", "bob", "carol"], "launch": ["dave"]},
                 ONE_DOC, ["alice", "bob", "carol"], id="readers-one"),
    pytest.param(READERS, ["alice", "bob", "carol", "dave"],
                 {"capital": ["alice", "bob", "carol"], "salary": ["carol"], "mayor": ["alice", "bob", "dave"],
                  "launch": ["dave"]},
                 TWO_DOCS, ["alice", "bob"], id="readers-two"),
    pytest.param(PRODUCT, PUB_T,
                 {"salary": {"conf": "confidential", "integrity": "trusted"},
                  "capital": {"conf": "internal", "integrity": "trusted"},
                  "recipe": {"conf": "public", "integrity": "untrusted"}},
                 ONE_DOC, {"conf": "internal", "integrity": "trusted"}, id="product-one"),
    pytest.param(PRODUCT, PUB_T,
                 {"capital": {"conf": "internal", "integrity": "trusted"},
                  "launch": {"conf": "confidential", "integrity": "trusted"},
                  "mayor": {"conf": "public", "integrity": "untrusted"},
                  "salary": {"conf": "confidential", "integrity": "untrusted"}},
                 TWO_DOCS, {"conf": "internal", "integrity": "untrusted"}, id="product-two"),
]


@pytest.mark.parametrize("lattice, qlabel, labels, qa, expected", CASES)
def test_label_is_the_join_of_the_documents_used(permissive, lattice, qlabel, labels, qa, expected):
    question, answer = qa
    query = LabelledSource("q", question, lattice.label(qlabel))
    documents = docs(lattice, labels)
    d = permissive.label(query, documents, answer)
    conservative = ConservativePropagator().label(query, documents, answer)
    assert d.fallback_reason is None
    assert d.label == lattice.label(expected), d.candidates
    assert d.conservative_label == conservative.label == lattice.join_all(x.label for x in [query, *documents])
    assert d.label < d.conservative_label and d.improved
    assert d.mode == "estimate" and d.passes >= 2 and d.tokens > 0
    assert all(lattice.label(c.label) <= d.conservative_label for c in d.candidates)


def test_query_label_always_counts(permissive):
    query = LabelledSource("q", ONE_DOC[0], CONF.label("confidential"))
    d = permissive.label(query, docs(CONF, {"capital": "public", "launch": "secret"}), ONE_DOC[1])
    assert d.label == CONF.label("confidential")


def test_exact_token_ids_are_scored_as_given(permissive, scorer):
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    documents = docs(CONF, {"capital": "internal", "launch": "secret"})
    by_text = permissive.label(query, documents, ONE_DOC[1])
    by_ids = permissive.label(query, documents, scorer.encode(ONE_DOC[1]))
    assert by_ids.label == by_text.label and by_ids.output == ONE_DOC[1]
    assert [c.mean_nll for c in by_ids.candidates] == pytest.approx([c.mean_nll for c in by_text.candidates])


def test_original_order_gives_the_same_label(scorer):
    from ifc_core import PermissivePropagator

    query = LabelledSource("q", TWO_DOCS[0], CONF.label("public"))
    documents = docs(CONF, {"launch": "secret", "capital": "internal", "mayor": "confidential"})
    d = PermissivePropagator(scorer, doc_order="original").label(query, documents, TWO_DOCS[1])
    assert d.label == CONF.label("confidential") and d.settings["doc_order"] == "original"
