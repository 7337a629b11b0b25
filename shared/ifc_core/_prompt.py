"""The prompt model: which token spans of a prompt are which sources.

The prompt for a restricted context C_L is assembled from separately tokenized pieces (the chat
template's head, one piece per document, the tail with the question), so that the prompts of two
contexts share their token prefix up to the first document in which they differ. The scorer
relies on that to reuse the KV cache of a shared prefix.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import _checks as checks
from ._errors import ConfigurationError
from ._sources import LabelledSource

__all__ = ["ChatPrompt", "Prompt", "DEFAULT_SYSTEM"]

DEFAULT_SYSTEM = (
    "You are a helpful assistant. Answer the question using the documents when they help. "
    "Be brief."
)
_MARK = "\u2063IFC-DOCS\u2063"


@dataclass(frozen=True, slots=True)
class Prompt:
    """Token ids of one prompt, with the [start, end) token span of each document in it."""

    ids: tuple[int, ...]
    spans: dict[str, tuple[int, int]]

    @property
    def source_ids(self) -> tuple[str, ...]:
        """Ids of the documents present, in prompt order."""
        return tuple(self.spans)


class ChatPrompt:
    """Builds prompts with the model's chat template.

    `tokenization` is a `Scorer`, or anything with its `encode`, `decode` and `render_chat`.
    The user turn reads ``Documents:`` followed by one ``[id]`` block per document,
    then ``Question: ...``. Document ids are shown as given, so a document keeps its identifier
    in every restricted context.
    """

    def __init__(self, tokenization: Any, *, system: str = DEFAULT_SYSTEM) -> None:
        if not all(callable(getattr(tokenization, m, None)) for m in ("encode", "decode", "render_chat")):
            raise checks.wrong_type("tokenization", "a Scorer (or anything with encode, decode and render_chat)",
                                    tokenization)
        checks.text(system, "system", empty=True)
        self.tokenization = tokenization
        self.system = system
        rendered = tokenization.render_chat(
            [
                {"role": "system", "content": system},
                {"role": "user", "content": f"Documents:\n{_MARK}Question: \x00"},
            ]
        )
        if rendered.count(_MARK) != 1 or rendered.count("\x00") != 1:
            raise ConfigurationError("tokenization: its chat template does not render message content verbatim; "
                                     "use a model whose template does")
        head, rest = rendered.split(_MARK)
        self._head = self._encode(head)
        self._tail_before, self._tail_after = rest.split("\x00")
        self._cache: dict[tuple[str, str], tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def _encode(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenization.encode(text))

    def _piece(self, doc: LabelledSource) -> tuple[int, ...]:
        key = (doc.id, doc.text)
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            hit = self._encode(f"[{doc.id}]\n{doc.text.strip()}\n\n")
            with self._lock:
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[key] = hit
        return hit

    def build(self, query: str, documents: Sequence[LabelledSource]) -> Prompt:
        """The prompt showing `documents` (in the order given) and the question `query`."""
        checks.text(query, "query", empty=True)
        ids = list(self._head)
        spans: dict[str, tuple[int, int]] = {}
        for doc in documents:
            if doc.id in spans:
                raise ConfigurationError(f"documents: document id {doc.id!r} appears twice; ids must be unique")
            piece = self._piece(doc)
            spans[doc.id] = (len(ids), len(ids) + len(piece))
            ids.extend(piece)
        ids.extend(self._encode(self._tail_before + query.strip() + self._tail_after))
        return Prompt(tuple(ids), spans)

    def text(self, prompt: Prompt) -> str:
        """The prompt decoded back to text (for audits and tests)."""
        return str(self.tokenization.decode(list(prompt.ids)))
