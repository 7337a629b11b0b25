"""The peer comparison: ContextCite (PyPI `context-cite`) on the same cases and the same model.

Each document is one ContextCite source (a partitioner of our own; no sentence splitting, so no
tokenizer data is downloaded). ContextCite is given our fixed output to attribute. Its label is
the query's label joined with the labels of the documents it attributes a positive score to.
The other figure is whether its top-attributed documents are the ones the case needs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import IFCError
from .._lattice import Label
from .._prompt import DEFAULT_SYSTEM
from ..scoring import HFScorer
from ._cases import EvalCase

__all__ = ["PeerResult", "contextcite"]


@dataclass(frozen=True)
class PeerResult:
    """ContextCite on one case: its label, whether its top-k are the needed documents, its time."""

    case: EvalCase
    label: Label
    scores: dict[str, float]
    top_hit: bool | None  # top-|needed| documents == the needed ones (None when none is needed)
    seconds: float
    passes: int


@contextlib.contextmanager
def _no_downloads() -> Iterator[None]:
    """ContextCite calls nltk.download at import time; it must not reach the network here."""
    import nltk

    real = nltk.download
    nltk.download = lambda *a, **k: False  # type: ignore[assignment]
    try:
        yield
    finally:
        nltk.download = real  # type: ignore[assignment]


def _import() -> Any:
    try:
        with _no_downloads():
            import context_cite
            from context_cite.context_partitioner import BaseContextPartitioner
    except ImportError as exc:
        raise IFCError("the peer comparison needs ContextCite: pip install 'llm-ifc[eval]'") from exc
    return context_cite.ContextCiter, BaseContextPartitioner


def contextcite(scorer: HFScorer, cases: Sequence[EvalCase], *, ablations: int = 64, batch_size: int = 8,
                progress: Any = None) -> list[PeerResult]:
    """ContextCite's attributions for each case's reference output."""
    citer_cls, base = _import()

    class Documents(base):  # type: ignore[misc, valid-type]
        def __init__(self, context: str, docs: Sequence[Any]) -> None:
            super().__init__(context)
            self.docs = list(docs)

        @property
        def num_sources(self) -> int:
            return len(self.docs)

        def split_context(self) -> None:
            pass

        def get_source(self, index: int) -> str:
            return self.docs[index].text

        def get_context(self, mask: Any = None) -> str:
            mask = np.ones(len(self.docs), dtype=bool) if mask is None else mask
            return "".join(f"[{d.id}]\n{d.text}\n\n" for d, keep in zip(self.docs, mask) if keep)

    tokenizer = scorer.tokenizer
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    results = []
    try:
        for case in cases:
            start = time.perf_counter()
            part = Documents("", case.documents)
            part.context = part.get_context()
            citer = citer_cls(scorer.model, tokenizer, part.context, case.query.text, partitioner=part,
                              num_ablations=ablations, batch_size=batch_size,
                              prompt_template=DEFAULT_SYSTEM + "\n\nDocuments:\n{context}Question: {query}")
            _, prompt = citer._get_prompt_ids(return_prompt=True)
            citer._cache["output"] = prompt + case.output  # attribute our fixed output, not its own
            with scorer.lock:
                scores = np.asarray(citer.get_attributions(verbose=False), dtype=float)
            by_doc = {d.id: float(s) for d, s in zip(case.documents, scores)}
            used = [d.label for d in case.documents if by_doc[d.id] > 0 and d.label is not None]
            label = case.query.label.lattice.join_all([case.query.label, *used])  # type: ignore[union-attr]
            top = sorted(by_doc, key=lambda i: -by_doc[i])[: len(case.needed)]
            results.append(PeerResult(case, label, by_doc, set(top) == set(case.needed) if case.needed else None,
                                      time.perf_counter() - start, -(-ablations // batch_size)))
            if progress is not None:
                progress.update(1)
    finally:
        tokenizer.padding_side = old_side
    return results
