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


class ToolUser(BaseChatModel):
    """A fake chat model that really does what the standard tests ask of a tool-calling model:
    binds tools, calls the one asked for (with the number the request gives, or placeholders that
    fit the schema), answers from a tool's result, and reports usage. It is the inner model of
    `IFCChatModel` in the standard suites; it generates nothing else."""

    tools: list = []
    tool_choice: Any = None

    @property
    def _llm_type(self) -> str:
        return "tool-user"

    @property
    def _identifying_params(self) -> dict:
        return {"model_name": "tool-user"}

    def _get_ls_params(self, stop=None, **kwargs):
        return {"ls_provider": "tests", "ls_model_name": kwargs.get("model", "tool-user"), "ls_model_type": "chat",
                "ls_temperature": 0.0}

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.model_copy(update={"tools": [convert_to_openai_tool(t)["function"] for t in tools],
                                       "tool_choice": tool_choice})

    def _call(self, messages) -> AIMessage:
        import re
        import uuid

        last = messages[-1]
        text = " ".join(str(getattr(m, "content", "")) for m in messages if m.type == "human")
        if last.type == "tool" or not self.tools:
            reply = f"The tool says {last.content}." if last.type == "tool" else "Hello! How can I help?"
            return AIMessage(reply)
        wanted = self.tool_choice if isinstance(self.tool_choice, str) and self.tool_choice not in (
            "any", "auto", "required") else None
        chosen = next((t for t in self.tools if t["name"] == wanted), None) or next(
            (t for t in self.tools if t["name"] in text), self.tools[0])
        if self.tool_choice in (None, "auto") and chosen["name"] not in text and len(self.tools) > 1:
            return AIMessage("Hello! How can I help?")
        number = re.search(r"\((\d+)\)", text)
        quoted = re.search(r"'([^']+)'", text)
        args = {}
        for name, spec in (chosen.get("parameters", {}).get("properties") or {}).items():
            kind = spec.get("type")
            args[name] = (int(number.group(1)) if number else 1) if kind in ("integer", "number") else (
                (quoted.group(1) if quoted else f"a {name}") if kind == "string" else None)
        return AIMessage("", tool_calls=[{"name": chosen["name"], "args": args, "id": f"call_{uuid.uuid4().hex[:8]}"}])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        message = self._call(messages)
        n = sum(len(str(m.content).split()) for m in messages)
        message.usage_metadata = {"input_tokens": n, "output_tokens": 5, "total_tokens": n + 5}
        message.response_metadata = {"model_name": "tool-user"}
        return ChatResult(generations=[ChatGeneration(message=message)])
