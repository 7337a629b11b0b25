"""`IFCRetriever`: labelled, clearance-filtered retrieval over any LangChain retriever."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.tools import BaseTool, create_retriever_tool
from pydantic import ConfigDict

from ifc_core import Label, LabelCodec, Lattice

from ._convert import document_source

__all__ = ["IFCRetriever", "labelled_retriever_tool"]


class IFCRetriever(BaseRetriever):
    """Wraps a retriever: parsed labels on every document, and only documents ⊑ `clearance`.

    Each returned `Document` has ``metadata["ifc_label"]`` as stored by the ingest API (missing or
    unparseable labels are replaced by ⊤ and flagged under ``ifc_label_problem``). Documents above
    the clearance are dropped. `IFCRetriever.from_chroma` also pushes the clearance into the
    Chroma query as a `where` filter; the check here runs either way.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_retriever: BaseRetriever
    lattice: Lattice
    clearance: Label | None = None

    @classmethod
    def from_chroma(cls, vectorstore: Any, lattice: Lattice, *, clearance: Label | None = None,
                    k: int = 4, **search_kwargs: Any) -> IFCRetriever:
        """Over a `langchain_chroma.Chroma` store written by `ifc_core.chroma.LabelledStore`."""
        kwargs: dict[str, Any] = {"k": k, **search_kwargs}
        if clearance is not None:
            where = LabelCodec(lattice).where(clearance)
            if where is not None:
                kwargs["filter"] = where
        return cls(base_retriever=vectorstore.as_retriever(search_kwargs=kwargs), lattice=lattice,
                   clearance=clearance)

    def _labelled(self, docs: list[Document]) -> list[Document]:
        codec = LabelCodec(self.lattice)
        out = []
        for doc in docs:
            source, missing = document_source(doc, codec)
            if self.clearance is not None and not source.label <= self.clearance:  # type: ignore[operator]
                continue
            meta = {**doc.metadata, **codec.encode(source.label, missing=missing)}  # type: ignore[arg-type]
            out.append(Document(page_content=doc.page_content, metadata=meta, id=doc.id or source.id))
        return out

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self._labelled(self.base_retriever.invoke(query, config={"callbacks": run_manager.get_child()}))

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        docs = await self.base_retriever.ainvoke(query, config={"callbacks": run_manager.get_child()})
        return self._labelled(docs)


def labelled_retriever_tool(retriever: IFCRetriever, name: str, description: str) -> BaseTool:
    """A retriever tool whose `ToolMessage.artifact` keeps the documents and their labels in agent state."""
    return create_retriever_tool(retriever, name, description, response_format="content_and_artifact")
