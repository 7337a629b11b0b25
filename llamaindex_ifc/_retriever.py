"""`IFCRetriever` and `IFCNodePostprocessor`: labelled, clearance-filtered nodes."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.tools import FunctionTool, ToolOutput
from pydantic import ConfigDict, PrivateAttr

from ifc_core import ConfigurationError, ConfigurationTypeError, Provenance, RetrievalGate

from ._convert import labelled_node, node_view

__all__ = ["IFCLabelledNodes", "IFCNodePostprocessor", "IFCRetriever", "MiniLMEmbedModel", "labelled_retriever_tool"]


class IFCLabelledNodes(BaseEvent):
    """Dispatched by `IFCNodePostprocessor` with the nodes it admitted, so that the attached
    `IFCEventHandler` registers them (a query engine reports no event after postprocessing)."""

    nodes: list[NodeWithScore]

    @classmethod
    def class_name(cls) -> str:
        return "IFCLabelledNodes"


def _gated(nodes: list[NodeWithScore], gate: RetrievalGate) -> list[NodeWithScore]:
    out = []
    for n in nodes:
        view = node_view(n)
        got = gate.admit(view.id, view.text, view.metadata)
        if got.metadata is not None:
            out.append(labelled_node(n, got.metadata))
    return out


class IFCNodePostprocessor(BaseNodePostprocessor):
    """For query engines: only nodes ⊑ the gate's clearance, each with a label that can be trusted.

    The `gate` (``store.gate(clearance)`` of a `LabelledStore`) checks each node's stored label
    against its seal (a label that fails is ⊤ and flagged); admitted nodes carry a provenance seal
    that `IFCEventHandler` checks, with the label keys hidden from the LLM and the embedder.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    gate: RetrievalGate

    @classmethod
    def class_name(cls) -> str:
        return "IFCNodePostprocessor"

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        admitted = _gated(nodes, self.gate)
        get_dispatcher().event(IFCLabelledNodes(nodes=admitted))
        return admitted


class IFCRetriever(BaseRetriever):
    """Wraps any LlamaIndex retriever: only nodes ⊑ the gate's clearance, with trusted labels.

    `IFCRetriever.from_store` builds one over `ChromaVectorStore` on a `LabelledStore`'s
    collection, with the clearance pushed into the query as a raw Chroma `where` filter; the gate
    checks every node either way (see `IFCNodePostprocessor`).
    """

    def __init__(self, retriever: BaseRetriever, gate: RetrievalGate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(gate, RetrievalGate):
            raise ConfigurationTypeError(f"gate: give a RetrievalGate (store.gate(clearance)), not {type(gate).__name__}")
        self.retriever = retriever
        self.gate = gate

    @classmethod
    def from_store(cls, store: Any, *, clearance: Any = None, k: int = 4) -> IFCRetriever:
        """Over a `LabelledStore`'s collection, through llama-index-vector-stores-chroma."""
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        from ifc_core.chroma import LabelledStore

        if not isinstance(store, LabelledStore):
            raise ConfigurationTypeError(f"IFCRetriever.from_store: give a LabelledStore (ifc_core.chroma), "
                                         f"not {type(store).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"IFCRetriever.from_store.k: give the number of nodes to return (a whole "
                                     f"number >= 1), not {k!r}")
        index = VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=store.collection),
                                                   embed_model=MiniLMEmbedModel())
        gate = store.gate(clearance)
        kwargs: dict[str, Any] = {"similarity_top_k": k}
        where = store.codec.where(gate.clearance) if gate.clearance is not None else None
        if where is not None:
            kwargs["vector_store_kwargs"] = {"where": where}
        return cls(index.as_retriever(**kwargs), gate)

    from_chroma = from_store  # the name of earlier releases

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return _gated(self.retriever.retrieve(query_bundle), self.gate)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return _gated(await self.retriever.aretrieve(query_bundle), self.gate)


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

    `ToolOutput.raw_output` is the list of nodes, each sealed for this tool's name: a tool
    result's labels are believed only under that seal (or for tools the policy lists in
    `labelled_tools`). A plain tool's result is text at the policy's declared label (⊤ when
    undeclared).
    """
    if not isinstance(retriever, IFCRetriever):
        raise ConfigurationTypeError(f"labelled_retriever_tool.retriever: give an IFCRetriever (its nodes carry "
                                     f"the seals), not {type(retriever).__name__}")
    reseal = Provenance(retriever.gate.lattice, retriever.gate.session).for_tool(name, description,
                                                                                  "labelled_retriever_tool")

    async def retrieve(query: str) -> ToolOutput:
        nodes = [labelled_node(n, reseal(node_view(n))) for n in await retriever.aretrieve(query)]
        text = "\n\n".join(n.node.get_content(MetadataMode.LLM) for n in nodes)
        return ToolOutput(tool_name=name, content=text, raw_input={"query": query}, raw_output=nodes)

    return FunctionTool.from_defaults(async_fn=retrieve, name=name, description=description)
