"""Small fakes for chains: a retriever of fixed documents and a model with canned answers."""

from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.retrievers import BaseRetriever

from ifc_core import RetrievalGate, Signer
from langchain_ifc import IFCRetriever


TEST_KEY = Signer(b"tests: the application key of the fake stores")


def book_gate(lattice, clearance=None):
    """The gate of the fake store "book" (its records are sealed with TEST_KEY)."""
    return RetrievalGate(lattice, TEST_KEY, "book", clearance)


class BookRetriever(BaseRetriever):
    """A plain store: returns `book[query]`, (id, text, label) triples sealed as the ingest API
    seals them (label None: a record with no label)."""

    book: dict
    gate: Any

    def _get_relevant_documents(self, query, *, run_manager):
        return [Document(text, metadata=self.gate.record_metadata(i, text, label) if label is not None
                         else {"source": "x"}, id=i)
                for i, text, label in self.book[query]]


class AnswerBook(BaseChatModel):
    """Answers with `answers[question]`, the question being the end of the last message."""

    answers: dict

    @property
    def _llm_type(self) -> str:
        return "answer-book"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        last = str(messages[-1].content)
        answer = next(a for q, a in self.answers.items() if last.endswith(q))
        if isinstance(answer, AIMessage):
            return ChatResult(generations=[ChatGeneration(message=answer)])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(answer))])


def rag_chain(retriever, model):
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough

    prompt = ChatPromptTemplate.from_messages([("human", "{context}\n\nQuestion: {question}")])
    docs = lambda ds: "\n\n".join(d.page_content for d in ds)  # noqa: E731
    return {"context": retriever | docs, "question": RunnablePassthrough()} | prompt | model


def book_retriever(book, lattice, clearance=None):
    """The fake store behind an `IFCRetriever` (the registered path)."""
    gate = book_gate(lattice, clearance)
    return IFCRetriever(base_retriever=BookRetriever(book=book, gate=gate), gate=gate)
