"""IFCRetriever / IFCNodePostprocessor over ChromaVectorStore: labels, hiding, clearance."""

from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from ifc_core.demo import LATTICE
from llamaindex_ifc import IFCNodePostprocessor, IFCRetriever

from .fakes import BookRetriever

PUBLIC = LATTICE.label({"conf": "public", "integrity": "trusted"})


def test_labels_are_parsed_and_hidden_from_llm_and_embedder(store):
    nodes = IFCRetriever.from_store(store).retrieve("office hours")
    assert sorted(n.node.node_id for n in nodes) == ["faq", "handbook", "salaries", "webpage"]
    for n in nodes:
        assert "ifc_label" in n.node.metadata
        assert "ifc_" not in n.node.get_content(MetadataMode.LLM)
        assert "ifc_" not in n.node.get_content(MetadataMode.EMBED)


def test_clearance_is_pushed_down_and_rechecked(store):
    retriever = IFCRetriever.from_store(store, clearance=PUBLIC)
    assert retriever.retriever._kwargs["where"] == {  # what VectorIndexRetriever passes to Chroma
        "$and": [{"ifc_conf_level": {"$lte": 0}}, {"ifc_integrity_level": {"$lte": 0}}]}
    assert [n.node.node_id for n in retriever.retrieve("salary table")] == ["faq"]
    book = {"q": [("faq", "Open 9 to 6.", PUBLIC),
                  ("pay", "Alice earns 95,000.", LATTICE.label({"conf": "confidential", "integrity": "trusted"})),
                  ("note", "Unlabelled note.", None)]}
    leaky = BookRetriever(book, LATTICE, clearance=PUBLIC)  # the store behind it ignores every filter
    assert [n.node.node_id for n in leaky.retrieve("q")] == ["faq"]


def test_postprocessor_marks_unlabelled_nodes_as_top(store):
    node = NodeWithScore(node=TextNode(id_="note", text="An unlabelled note.", metadata={"src": "wiki"}))
    (out,) = IFCNodePostprocessor(gate=store.gate()).postprocess_nodes([node], QueryBundle("q"))
    assert out.node.metadata["ifc_label"] == '{"conf":"confidential","integrity":"untrusted"}'
    assert "missing or unparseable" in out.node.metadata["ifc_label_problem"]
    assert IFCNodePostprocessor(gate=store.gate(PUBLIC)).postprocess_nodes([node]) == []
