"""`IFCRetriever`: labelled, clearance-filtered retrieval over any LangChain retriever."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.callbacks.base import Callbacks
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.vectorstores import VectorStoreRetriever
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ifc_core import ConfigurationError, ConfigurationTypeError, Provenance, RetrievalGate

from ._convert import document_view

__all__ = ["IFCRetriever", "labelled_retriever_tool"]


class IFCRetriever(BaseRetriever):
    """Wraps a retriever: only documents ⊑ `gate.clearance`, each with a label that can be trusted.

    The `gate` (a `RetrievalGate`, usually ``store.gate(clearance)`` of an
    `ifc_core.chroma.LabelledStore`) checks every record's stored label against its seal: a label
    changed outside the ingest API, or missing, is ⊤ and flagged under ``ifc_label_problem``.
    Documents above the clearance are dropped. What is returned carries ``metadata["ifc_label"]``
    and a provenance seal (``ifc_attest``) that the adapters check; a label on a document that did
    not come through an `IFCRetriever` is never believed.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_retriever: BaseRetriever
    gate: RetrievalGate
    k: int | None = None  # at most this many documents (None: what the base retriever returns)

    @classmethod
    def from_store(cls, store: Any, *, clearance: Any = None, k: int = 4, **search_kwargs: Any) -> IFCRetriever:
        """Over a `LabelledStore`, through langchain-chroma, with the clearance pushed into the
        Chroma query as a `where` filter (the gate checks again either way)."""
        from langchain_chroma import Chroma

        _check_store(store, k)
        vectorstore = Chroma(client=store.client, collection_name=store.collection.name)
        return cls.from_chroma(vectorstore, store, clearance=clearance, k=k, **search_kwargs)

    @classmethod
    def from_chroma(cls, vectorstore: Any, store: Any, *, clearance: Any = None, k: int = 4,
                    **search_kwargs: Any) -> IFCRetriever:
        """Over a `langchain_chroma.Chroma` on the collection of `store` (a `LabelledStore`)."""
        _check_store(store, k)
        if vectorstore._collection.name != store.collection.name:
            raise ConfigurationError(f"from_chroma: the vector store reads {vectorstore._collection.name!r} but the "
                             f"labelled store is {store.collection.name!r}; give the same collection")
        gate = store.gate(clearance)
        kwargs: dict[str, Any] = {"k": k, **search_kwargs}
        if gate.clearance is not None:
            where = store.codec.where(gate.clearance)
            if where is not None:
                kwargs["filter"] = where
        return cls(base_retriever=vectorstore.as_retriever(search_kwargs=kwargs), gate=gate, k=k)

    @model_validator(mode="after")
    def _check(self) -> IFCRetriever:
        if self.k is not None and (isinstance(self.k, bool) or self.k < 1):
            raise ValueError(f"IFCRetriever.k: give a positive number of documents, got {self.k!r}")
        return self

    def _request(self, kwargs: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
        """(k for this call, what to ask the base retriever); unknown arguments are an error."""
        unknown = sorted(set(kwargs) - {"k"})
        if unknown:
            raise ConfigurationTypeError(f"IFCRetriever.invoke: unknown argument(s) {unknown}; it takes k (the number of documents)")
        k = kwargs.get("k", self.k)
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ConfigurationError(f"IFCRetriever.invoke: k must be a positive number of documents, got {k!r}")
        takes_k = isinstance(self.base_retriever, VectorStoreRetriever)  # others: cut after the gate
        return k, ({"k": k} if k is not None and takes_k else {})

    def _labelled(self, docs: list[Document], k: int | None) -> list[Document]:
        out = []
        for doc in docs:
            view = document_view(doc)
            got = self.gate.admit(view.id, view.text, view.metadata)
            if got.metadata is not None:
                out.append(Document(page_content=doc.page_content, metadata=got.metadata, id=got.id))
        return out[:k] if k is not None else out

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        k, ask = self._request(kwargs)
        docs = self.base_retriever.invoke(query, config={"callbacks": run_manager.get_child()}, **ask)
        return self._labelled(docs, k)

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        k, ask = self._request(kwargs)
        docs = await self.base_retriever.ainvoke(query, config={"callbacks": run_manager.get_child()}, **ask)
        return self._labelled(docs, k)


class _Query(BaseModel):
    query: str = Field(description="query to look up in retriever")


def _check_store(store: Any, k: Any) -> None:
    from ifc_core.chroma import LabelledStore

    if not isinstance(store, LabelledStore):
        raise ConfigurationTypeError(f"IFCRetriever.from_store: give a LabelledStore (ifc_core.chroma), "
                                     f"not {type(store).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigurationError(f"IFCRetriever k: give the number of documents to return (a whole number >= 1), not {k!r}")


def labelled_retriever_tool(retriever: IFCRetriever, name: str, description: str) -> BaseTool:
    """A retriever tool whose documents keep their labels in agent state.

    Its `ToolMessage.artifact` holds the documents, each sealed for this tool's name: the
    adapters believe a tool artifact's labels only under that seal (or for tools the policy
    lists in `labelled_tools`), so another tool cannot pass documents off as labelled. The text
    the model sees is the documents' text, joined by blank lines.
    """
    if not isinstance(retriever, IFCRetriever):
        raise ConfigurationTypeError(f"labelled_retriever_tool.retriever: give an IFCRetriever (its documents carry "
                                     f"the seals), not {type(retriever).__name__}")
    reseal = Provenance(retriever.gate.lattice, retriever.gate.session).for_tool(name, description,
                                                                                  "labelled_retriever_tool")

    def sealed(docs: list[Document]) -> tuple[str, list[Document]]:
        out = [Document(d.page_content, metadata=reseal(document_view(d)), id=d.id)
               for d in docs]
        return "\n\n".join(d.page_content for d in out), out

    def run(query: str, callbacks: Callbacks = None) -> tuple[str, list[Document]]:
        return sealed(retriever.invoke(query, config={"callbacks": callbacks}))

    async def arun(query: str, callbacks: Callbacks = None) -> tuple[str, list[Document]]:
        return sealed(await retriever.ainvoke(query, config={"callbacks": callbacks}))

    return StructuredTool.from_function(func=run, coroutine=arun, name=name, description=description,
                                        args_schema=_Query, response_format="content_and_artifact")
