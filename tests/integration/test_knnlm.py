"""The kNN-LM propagator on the real embedded model: datastore, restriction, faiss, labels."""

import numpy as np
import pytest

from ifc_core import ConservativePropagator, KNNDatastore, KNNLMPropagator, LabelledSource

from .facts import CONF, ONE_DOC, READERS, TEXTS, docs
from .test_permissive import CASES

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def knn(scorer):
    return KNNLMPropagator(scorer)


@pytest.fixture(scope="module")
def documents():
    return docs(CONF, {"capital": "internal", "salary": "secret", "launch": "confidential", "river": "public"})


# kNN-LM's known weakness (docs/method.md): a token is explained by any document containing it.
# In the two-fact readers and product cases the mayor document also contains "Zelbrook", so the
# capital document looks unneeded and the label comes out below the truth (unsafe in estimate mode).
OVERLAP = "the mayor document also contains the capital's name; kNN-LM cannot tell which one was used"
KNN_CASES = [pytest.param(*c.values, id=c.id,
                          marks=pytest.mark.xfail(strict=True, reason=OVERLAP) if c.id in {"readers-two", "product-two"} else ())
             for c in CASES]


@pytest.mark.parametrize("lattice, qlabel, labels, qa, expected", KNN_CASES)
def test_copy_style_answers_get_the_needed_documents_label(knn, lattice, qlabel, labels, qa, expected):
    question, answer = qa
    query = LabelledSource("q", question, lattice.label(qlabel))
    documents = docs(lattice, labels)
    d = knn.label(query, documents, answer)
    assert d.fallback_reason is None
    assert d.label == lattice.label(expected), d.candidates
    assert d.conservative_label == ConservativePropagator().label(query, documents, answer).label
    assert d.propagator == "knnlm" and d.settings["alpha"] == knn.alpha


def test_one_model_pass_serves_every_candidate(knn, documents):
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    knn.label(query, documents, ONE_DOC[1])  # encodes the documents (cached per text)
    d = knn.label(query, documents, ONE_DOC[1])
    assert d.passes == 1 and len(d.candidates) >= 3


def test_general_knowledge_needs_no_document(knn, documents):
    query = LabelledSource("q", "What is the capital of France?", CONF.label("public"))
    d = knn.label(query, documents, "The capital of France is Paris.")
    assert d.label == CONF.label("public") and d.conservative_label == CONF.label("secret")


def test_restriction_removes_the_withheld_documents_entries(scorer, documents):
    for store in (KNNDatastore.build(scorer, documents), KNNDatastore.build(scorer, documents, persistent=True)):
        sizes = {d.id: len(store.entries_of(d.id)) for d in documents}
        assert sizes == {d.id: len(scorer.encode(d.text)) for d in documents}
        kept = store.restricted(["capital", "river"])
        owners = {store.doc_ids[o] for o in store.owners[kept.entries]}
        assert owners == {"capital", "river"} and len(kept.entries) == sizes["capital"] + sizes["river"]
        assert len(kept.entries_of("salary")) == 0
        # a query aimed at the salary document finds none of its tokens once it is withheld
        salary_tokens = set(scorer.encode(TEXTS["salary"])) - set(scorer.encode(TEXTS["capital"] + TEXTS["river"]))
        queries = store.keys[store.entries_of("salary")] if store.keys is not None else None
        if queries is not None:
            _, values = kept.search(queries, 8)
            assert not (set(values.ravel().tolist()) & salary_tokens)
            _, values = store.search(queries, 1)
            assert set(values.ravel().tolist()) & salary_tokens


def test_exact_and_faiss_search_agree(scorer, documents):
    exact = KNNDatastore.build(scorer, documents)
    index = exact.to_faiss()
    queries = exact.keys[:20]
    for store_a, store_b in ((exact, index), (exact.restricted(["salary"]), index.restricted(["salary"]))):
        da, va = store_a.search(queries, 5)
        db, vb = store_b.search(queries, 5)
        assert np.allclose(da, db, rtol=1e-3, atol=0.5)
        clear = da[:, 1] - da[:, 0] > 1.0  # the nearest entry is unambiguous
        assert clear.any() and np.array_equal(va[clear, 0], vb[clear, 0])


def test_persistent_store_round_trips_and_is_used(scorer, documents, tmp_path):
    built = KNNDatastore.build(scorer, documents, persistent=True)
    built.save(tmp_path / "knn")
    loaded = KNNDatastore.load(tmp_path / "knn", CONF)
    assert loaded.doc_ids == built.doc_ids and loaded.tags == built.tags
    assert np.array_equal(loaded.values, built.values) and loaded.index.ntotal == built.index.ntotal
    queries = KNNDatastore.build(scorer, documents).keys[:10]
    assert np.array_equal(loaded.search(queries, 4)[1], built.search(queries, 4)[1])

    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    with_store = KNNLMPropagator(scorer, datastore=loaded).label(query, documents, ONE_DOC[1])
    per_request = KNNLMPropagator(scorer).label(query, documents, ONE_DOC[1])
    assert with_store.label == per_request.label == CONF.label("internal")
    assert with_store.settings["datastore"] == "persistent" and with_store.passes == 1


def test_a_store_is_not_used_for_changed_text_or_a_lower_label_now(scorer, documents, tmp_path):
    store = KNNDatastore.build(scorer, documents, persistent=True)
    changed = [LabelledSource(d.id, d.text + " Updated.", d.label) if d.id == "capital" else d for d in documents]
    assert store.covers(documents, scorer.model_id) and not store.covers(changed, scorer.model_id)
    prop = KNNLMPropagator(scorer, datastore=store)
    inputs_relabelled = [LabelledSource(d.id, d.text, CONF.label("public")) for d in documents]
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    got, _, _ = prop.datastore_for(prop_inputs(query, inputs_relabelled), inputs_relabelled)
    assert got.index is None  # stored tags are higher than the labels given now: a fresh store


def prop_inputs(query, documents):
    from ifc_core._inputs import DecisionInputs

    return DecisionInputs(query, documents, None)


def spied(prop):
    """`prop` recording every datastore it searches or generates with."""
    used = []
    original = prop.datastore_for

    def spy(inputs, docs):
        store, passes, tokens = original(inputs, docs)
        used.append(store)
        return store, passes, tokens

    prop.datastore_for = spy
    return used


def owners(store):
    return {store.doc_ids[o] for o in store.owners[store.entries]}


def test_enforce_regenerates_from_the_restricted_datastore(scorer, documents):
    prop = KNNLMPropagator(scorer)
    used = spied(prop)
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    d = prop.enforce(query, documents, max_new_tokens=24)
    assert d.fallback_reason is None and d.regenerated
    assert d.label == CONF.label("internal") and "Zelbrook" in d.output
    assert owners(used[0]) == {d.id for d in documents}  # the first answer saw every document
    assert owners(used[-1]) == set(d.admitted) == {"capital", "river"}


def test_readers_enforce_is_sound(scorer):
    prop = KNNLMPropagator(scorer)
    used = spied(prop)
    query = LabelledSource("q", "How much does Marta Lindqvist earn?", READERS.label(["alice", "bob", "carol", "dave"]))
    documents = docs(READERS, {"salary": ["alice", "bob"], "capital": ["alice"], "launch": ["carol"]})
    d = prop.enforce(query, documents, max_new_tokens=24)
    assert d.fallback_reason is None and d.output
    admitted = [doc for doc in documents if doc.id in d.admitted]
    assert d.label == READERS.join_all([query.label, *(doc.label for doc in admitted)])
    if d.regenerated:  # the released text was generated from the admitted documents' entries only
        assert owners(used[-1]) == set(d.admitted)


def test_fails_closed_on_an_empty_output_and_unlabelled_documents(knn, documents):
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    d = knn.label(query, documents, "   ")
    assert d.fallback_reason and d.label == d.conservative_label
    unlabelled = [*documents, LabelledSource("stranger", "Zelbrook is lovely.", None)]
    d = knn.label(query, unlabelled, ONE_DOC[1])
    assert d.conservative_label == CONF.top


def test_fails_closed_on_a_model_error_a_long_document_and_nan(scorer, documents, monkeypatch):
    prop = KNNLMPropagator(scorer)
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    long_doc = LabelledSource("manual", "The manual says nothing. " * 2000, CONF.label("internal"))
    d = prop.label(query, [*documents, long_doc], ONE_DOC[1])
    assert "window" in d.fallback_reason and d.label == d.conservative_label == CONF.label("secret")

    import ifc_core._knn as knn_module

    monkeypatch.setattr(knn_module, "knn_probability", lambda *a: np.full(len(a[2]), np.nan))
    d = prop.label(query, documents, ONE_DOC[1])
    assert "non-finite" in d.fallback_reason and d.label == CONF.label("secret")
    e = prop.enforce(query, documents, max_new_tokens=8)
    assert e.fallback_reason and e.label == CONF.label("secret") and not e.regenerated
    monkeypatch.undo()

    def boom(**kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(scorer, "forward", boom)
    d = prop.label(query, documents, "Something new that needs a pass.")
    assert "out of memory" in d.fallback_reason and d.label == CONF.label("secret")
