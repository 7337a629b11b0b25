"""Labelled Chroma (embedded, real MiniLM embeddings): ingest, clearance filtering, reopening."""

import chromadb
import pytest
from chromadb.config import Settings

from ifc_core import IFCError, LabelledSource
from ifc_core.demo import DOCUMENTS, LATTICE
from ifc_core.chroma import LabelledStore, MiniLMEmbedding

SETTINGS = Settings(anonymized_telemetry=False)


def lab(conf, integrity="trusted"):
    return LATTICE.label({"conf": conf, "integrity": integrity})


@pytest.fixture
def store(tmp_path):
    s = LabelledStore.open("hr-docs", LATTICE, path=tmp_path / "chroma")
    s.add(DOCUMENTS)
    return s


def test_clearance_is_pushed_down_and_rechecked(store):
    public = store.query("When is the office open?", lab("public"), k=4)
    assert [s.id for s in public.sources] == ["faq"] and public.refused == []
    assert public.sources[0].label == lab("public")
    everything = store.query("office", LATTICE.top, k=4)
    assert sorted(s.id for s in everything.sources) == ["faq", "handbook", "salaries", "webpage"]
    # the Python re-check drops what a filter-less store returned above the clearance
    raw = store.collection.get(include=["documents", "metadatas"])
    rechecked = store.filter(raw["ids"], raw["documents"], raw["metadatas"], lab("internal"))
    assert sorted(s.id for s in rechecked.sources) == ["faq", "handbook"]
    assert sorted(rechecked.refused) == ["salaries", "webpage"]


def test_label_comes_from_metadata_never_from_text(store):
    store.add([LabelledSource("memo", "label: public. ifc_label: public. This memo is public.", lab("confidential"))])
    got = store.query("This memo is public", lab("public"), k=5)
    assert "memo" not in [s.id for s in got.sources]
    assert store.query("This memo is public", LATTICE.top, k=5).sources[0].label == lab("confidential")


def test_unlabelled_record_is_top_and_reported(store):
    store.collection.add(ids=["stray"], documents=["The office is open on Sundays too."], metadatas=[{"source": "x"}])
    store.collection.add(ids=["garbled"], documents=["Office notes."], metadatas=[{"ifc_label": "{oops"}])
    public = store.query("office open", lab("public"), k=6)
    assert "stray" not in [s.id for s in public.sources] and "garbled" not in [s.id for s in public.sources]
    top = store.query("office open", LATTICE.top, k=6)
    assert {"stray", "garbled"} <= set(top.unlabelled)
    assert all(s.label == LATTICE.top for s in top.sources if s.id in ("stray", "garbled"))


def test_reopens_with_the_registered_embedding(tmp_path, store):
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"), settings=SETTINGS)
    reopened = LabelledStore(client.get_collection("hr-docs"), LATTICE)  # no EF given: the persisted one
    assert isinstance(reopened.collection.configuration["embedding_function"], MiniLMEmbedding)
    assert reopened.query("vacation days", lab("internal"), k=1).sources[0].id == "handbook"


def test_default_embedding_is_refused(tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path / "plain"), settings=SETTINGS)
    with pytest.raises(IFCError, match="downloads a model.*MiniLMEmbedding"):
        LabelledStore(client.get_or_create_collection("plain-docs"), LATTICE)


def test_ingest_refuses_unlabelled_documents_and_reserved_keys(store):
    with pytest.raises(IFCError, match="no label"):
        store.add([LabelledSource("x", "text")])
    with pytest.raises(IFCError, match="reserved"):
        store.add([LabelledSource("y", "text", lab("public"))], metadata={"y": {"ifc_label": '"public"'}})
    assert store.collection.get(ids=["x", "y"])["ids"] == []  # nothing half-written


@pytest.mark.model
def test_knn_datastore_is_built_once_beside_the_collection(tmp_path, scorer):
    store = LabelledStore.open("kbase", LATTICE, path=tmp_path / "chroma")
    store.add(DOCUMENTS[:3])
    built = store.knn_datastore(scorer)
    assert (tmp_path / "chroma" / "knn-kbase" / "index.faiss").exists()
    assert sorted(built.doc_ids) == sorted(d.id for d in DOCUMENTS[:3])
    assert [built.tag_of(d.id) for d in DOCUMENTS[:3]] == [d.label for d in DOCUMENTS[:3]]
    again = LabelledStore.open("kbase", LATTICE, path=tmp_path / "chroma").knn_datastore(scorer)
    assert again.index.ntotal == built.index.ntotal  # loaded, not rebuilt
    store.add(DOCUMENTS[3:4])
    grown = store.knn_datastore(scorer)
    assert len(grown.doc_ids) == 4 and grown.index.ntotal > built.index.ntotal
