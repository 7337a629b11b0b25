"""The introspection baseline of method.md: ask the model which documents the output relied on.

A baseline to compare against, not a sound estimator: the model may be wrong about itself. It
fails closed like every propagator. A reply that is not exactly a comma-separated list of known
document ids (or ``NONE``) gives the conservative label, with the reason recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from . import _checks as checks
from ._errors import ScoringError
from ._inputs import DecisionInputs, Output
from ._propagators import Propagator
from ._record import Decision
from ._sources import LabelledSource

__all__ = ["IntrospectionPropagator", "parse_reliance"]

INSTRUCTION = ("Which documents did the answer rely on? Reply with their ids separated by commas, "
               "or NONE if it relied on none. Reply with nothing else.")
_ITEM = re.compile(r"\[?([^\[\],]+?)\]?")


def parse_reliance(reply: str, known: Sequence[str]) -> list[str]:
    """The document ids in `reply`, which must be exactly ``id, id, ...`` or ``NONE``.

    Raises `ValueError` for anything else: extra words, an id not in `known`, an empty reply. Ids
    may be written bare or in brackets, as the prompt shows them.
    """
    checks.text(reply, "reply", empty=True)
    known = checks.names(known, "known", "document id", empty=True)
    text = reply.strip().rstrip(".").strip()
    if not text:
        raise ValueError("empty reply")
    if text.upper() == "NONE":
        return []
    ids = []
    for part in text.split(","):
        match = _ITEM.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"not a document id: {part.strip()!r}")
        doc_id = match.group(1).strip()
        if doc_id not in known:
            raise ValueError(f"unknown document id {doc_id!r} (known: {list(known)})")
        if doc_id not in ids:
            ids.append(doc_id)
    return ids


class IntrospectionPropagator(Propagator):
    """Labels an output with the documents the model says it relied on (a baseline; fails closed)."""

    name = "introspection"

    def __init__(self, scorer: Any, *, prompt: Any = None, lattice: Any = None, max_reply_tokens: int = 24) -> None:
        super().__init__(scorer, prompt=prompt, lattice=lattice)
        self.max_reply_tokens = checks.whole(max_reply_tokens, "max_reply_tokens")

    @property
    def settings(self) -> dict[str, Any]:
        return {"max_reply_tokens": self.max_reply_tokens}

    def _admit(self, inputs: DecisionInputs, docs: Sequence[LabelledSource], answer: str, spent: list[Any]) -> tuple[Any, ...]:
        scorer = self._need_scorer()
        question = f"{inputs.query.text.strip()}\n\nAnswer: {answer.strip()}\n\n{INSTRUCTION}"
        reply = scorer.generate(self.prompt.build(question, docs).ids, self.max_reply_tokens)
        spent.append(reply)
        text = scorer.decode(reply.ids)
        try:
            relied = parse_reliance(text, [d.id for d in docs])
        except ValueError as exc:
            raise ScoringError(f"unusable introspection reply {text!r}: {exc}") from None
        label = inputs.lattice.join_all(inputs.label_of(d) for d in docs if d.id in relied)
        return label, inputs.admitted(label), []

    def label(self, query: LabelledSource, documents: Sequence[LabelledSource], output: Output,
              *, id: str | None = None, spans: Any = None) -> Decision:  # spans: no per-token scores, none labelled
        return self._estimate(query, documents, output, id,
                              lambda inputs, text, ids, spent: self._admit(inputs, inputs.by_rank(), text, spent))

    def enforce(self, query: LabelledSource, documents: Sequence[LabelledSource], *,
                max_new_tokens: int = 128, id: str | None = None) -> Decision:
        return self._safety_wrapper(
            query, documents, max_new_tokens, id,
            lambda inputs, docs, prompt, gen, spent: self._admit(inputs, docs, self._need_scorer().decode(gen.ids), spent))
