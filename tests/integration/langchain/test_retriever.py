"""IFCRetriever over langchain-chroma: labels on every document, clearance pushed down and re-checked."""

import asyncio

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from ifc_core.demo import LATTICE
from langchain_ifc import IFCRetriever
from langchain_ifc._demo import chroma_retriever

PUBLIC = LATTICE.label({"conf": "public", "integrity": "trusted"})


def test_labels_on_documents_sync_and_async(store):
    retriever = chroma_retriever(store)
    docs = retriever.invoke("office hours")
    assert sorted(d.id for d in docs) == ["faq", "handbook", "salaries", "webpage"]
    assert all("ifc_label" in d.metadata and "ifc_label_problem" not in d.metadata for d in docs)
    adocs = asyncio.run(retriever.ainvoke("office hours"))
    assert [d.id for d in adocs] == [d.id for d in docs]


def test_clearance_filter_is_pushed_into_the_chroma_query(store):
    from langchain_chroma import Chroma

    vectorstore = Chroma(client=store.client, collection_name=store.collection.name)
    retriever = IFCRetriever.from_chroma(vectorstore, store, clearance=PUBLIC, k=4)
    assert retriever.base_retriever.search_kwargs["filter"] == {
        "$and": [{"ifc_conf_level": {"$lte": 0}}, {"ifc_integrity_level": {"$lte": 0}}]}
    assert [d.id for d in retriever.invoke("salary table")] == ["faq"]


class Leaky(BaseRetriever):
    """A retriever that ignores every filter and returns an unlabelled record too."""

    docs: list

    def _get_relevant_documents(self, query, *, run_manager):
        return self.docs


def test_python_recheck_and_unlabelled_records(store):
    raw = store.collection.get(include=["documents", "metadatas"])
    docs = [Document(t, metadata=m, id=i) for i, t, m in zip(raw["ids"], raw["documents"], raw["metadatas"])]
    docs.append(Document("An unlabelled note.", metadata={"source": "wiki"}, id="note"))
    public = IFCRetriever(base_retriever=Leaky(docs=docs), gate=store.gate(PUBLIC)).invoke("q")
    assert [d.id for d in public] == ["faq"]
    everything = IFCRetriever(base_retriever=Leaky(docs=docs), gate=store.gate()).invoke("q")
    note = next(d for d in everything if d.id == "note")
    assert note.metadata["ifc_label"] == '{"conf":"confidential","integrity":"untrusted"}'
    assert "missing or unparseable" in note.metadata["ifc_label_problem"]
