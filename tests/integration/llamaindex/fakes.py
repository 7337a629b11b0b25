"""Small LlamaIndex fakes: a retriever of fixed nodes and an LLM with canned answers."""

from typing import Any

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, TextNode

from llamaindex_ifc import IFCRetriever

from ..langchain.fakes import book_gate


class PlainBookRetriever(BaseRetriever):
    """A plain store: the nodes `book[query]` ((id, text, label) triples, sealed as the ingest API
    seals them with the fake store's key; label None: no label)."""

    def __init__(self, book: dict, lattice: Any) -> None:
        super().__init__()
        self.book, self.gate = book, book_gate(lattice)

    def _retrieve(self, query_bundle):
        return [NodeWithScore(node=TextNode(id_=i, text=t, metadata=self.gate.record_metadata(i, t, lab) if lab
                                            else {"src": "x"}), score=1.0)
                for i, t, lab in self.book[query_bundle.query_str]]


def BookRetriever(book: dict, lattice: Any, clearance: Any = None) -> IFCRetriever:
    """The fake store behind an `IFCRetriever` (the registered path)."""
    return IFCRetriever(PlainBookRetriever(book, lattice), book_gate(lattice, clearance))


class AnswerBook(CustomLLM):
    """Answers with `answers[q]` for the question q the prompt ends with; records every prompt."""

    answers: dict
    prompts: list = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=next(a for q, a in self.answers.items() if q in prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self.complete(prompt, formatted=formatted).text
        so_far = ""
        for word in text.split(" "):  # word by word, as a streaming model would
            delta = (" " if so_far else "") + word
            so_far += delta
            yield CompletionResponse(text=so_far, delta=delta)


def engine(retriever, llm):
    from llama_index.core import PromptTemplate
    from llama_index.core.query_engine import RetrieverQueryEngine

    qa = PromptTemplate("Documents:\n{context_str}\n\nQuestion: {query_str}")
    return RetrieverQueryEngine.from_args(retriever, llm=llm, text_qa_template=qa)
