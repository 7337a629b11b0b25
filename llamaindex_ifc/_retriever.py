"""`IFCRetriever` and `IFCNodePostprocessor`: labelled, clearance-filtered nodes."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from llama_index.core.tools import FunctionTool, ToolOutput
from pydantic import ConfigDict, PrivateAttr

from ifc_core import Label, LabelCodec, Lattice

from ._convert import label_node, node_source

__all__ = ["IFCRetriever", "IFCNodePostprocessor", "MiniLMEmbedModel", "labelled_retriever_tool"]


def _labelled(nodes: list[NodeWithScore], codec: LabelCodec, clearance: Label | None) -> list[NodeWithScore]:
    out = []
    for n in nodes:
        source, missing = node_source(n, codec)
        if clearance is not None and not source.label <= clearance:  # type: ignore[operator]
            continue
        label_node(n.node, source.label, codec, missing)  # type: ignore[arg-type]
        out.append(n)
    return out


class IFCNodePostprocessor(BaseNodePostprocessor):
    """For query engines: parsed labels on every node, nodes above `clearance` dropped.

    Label keys are added to the nodes' excluded LLM and embedding metadata keys (LlamaIndex
    otherwise writes node metadata into prompts). Missing or unparseable labels become ⊤.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    lattice: Lattice
    clearance: Label | None = None

    @classmethod
    def class_name(cls) -> str:
        return "IFCNodePostprocessor"

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        return _labelled(nodes, LabelCodec(self.lattice), self.clearance)


class IFCRetriever(BaseRetriever):
    """Wraps any LlamaIndex retriever: parsed labels on every node, and only nodes ⊑ `clearance`.

    `IFCRetriever.from_chroma` builds one over `ChromaVectorStore` on a collection written by
    `ifc_core.chroma.LabelledStore`, with the clearance pushed into the query as a raw Chroma
    `where` filter; the check here runs either way.
    """

    def __init__(self, retriever: BaseRetriever, lattice: Lattice, clearance: Label | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retriever = retriever
        self.postprocessor = IFCNodePostprocessor(lattice=lattice, clearance=clearance)

    @classmethod
    def from_chroma(cls, store: Any, *, clearance: Label | None = None, k: int = 4) -> IFCRetriever:
        """Over a `LabelledStore`'s collection, through llama-index-vector-stores-chroma."""
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        index = VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=store.collection),
                                                   embed_model=MiniLMEmbedModel())
        kwargs: dict[str, Any] = {"similarity_top_k": k}
        where = LabelCodec(store.lattice).where(clearance) if clearance is not None else None
        if where is not None:
            kwargs["vector_store_kwargs"] = {"where": where}
        return cls(index.as_retriever(**kwargs), store.lattice, clearance)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.postprocessor.postprocess_nodes(self.retriever.retrieve(query_bundle), query_bundle)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.postprocessor.postprocess_nodes(await self.retriever.aretrieve(query_bundle), query_bundle)


class MiniLMEmbedModel(BaseEmbedding):
    """LlamaIndex face of the engine's offline all-MiniLM-L6-v2 (the same vectors Chroma stores)."""

    _ef: Any = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(model_name="all-MiniLM-L6-v2", **kwargs)
        from ifc_core.chroma import MiniLMEmbedding

        self._ef = MiniLMEmbedding()

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedModel"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, v)) for v in self._ef(texts)]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def labelled_retriever_tool(retriever: IFCRetriever, name: str, description: str) -> FunctionTool:
    """A retriever tool whose result keeps its nodes (and their labels) for `IFCEventHandler`.

    A plain tool's result is text, labelled by the policy's declaration for that tool (⊤ when
    undeclared); this one's `ToolOutput.raw_output` is the list of labelled nodes.
    """

    async def retrieve(query: str) -> ToolOutput:
        nodes = await retriever.aretrieve(query)
        text = "\n\n".join(n.node.get_content(MetadataMode.LLM) for n in nodes)
        return ToolOutput(tool_name=name, content=text, raw_input={"query": query}, raw_output=nodes)

    return FunctionTool.from_defaults(async_fn=retrieve, name=name, description=description)
