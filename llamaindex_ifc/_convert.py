"""Translation between LlamaIndex nodes and the engine's labelled sources (no rules here)."""

from __future__ import annotations

from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore

from ifc_core import LABEL_PROBLEM_KEY, Label, LabelCodec, LabelledSource


def node_source(node: BaseNode | NodeWithScore, codec: LabelCodec) -> tuple[LabelledSource, bool]:
    """A node as a labelled source; (source, True) when its stored label was missing."""
    node = node.node if isinstance(node, NodeWithScore) else node
    label = codec.decode(node.metadata)
    missing = label is None or LABEL_PROBLEM_KEY in node.metadata  # flagged upstream by IFCRetriever
    return LabelledSource(node.node_id, node.get_content(MetadataMode.NONE),
                          codec.lattice.top if missing else label), missing


def label_node(node: BaseNode, label: Label, codec: LabelCodec, missing: bool) -> None:
    """Store the parsed label on a node, hidden from the LLM and the embedder."""
    meta = codec.encode(label, missing=missing)
    node.metadata.update(meta)
    for keys in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
        keys.extend(k for k in meta if k not in keys)
