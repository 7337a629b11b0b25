"""The kNN-LM datastore of method.md: document hidden states, searchable by label.

One entry per document token: key = the model's final hidden state (the output head's input) at
the position that predicts the token, value = the token, owner = the document. Keys are computed
with each document shown as an assistant reply to an empty question, so they live in the same
space as the hidden states of an answer being scored.

Two backends, one interface: exact search by matrix product (per-request stores, on the model's
device) and a faiss flat index (persistent stores over a whole collection, saved to a folder).
`restricted(ids)` gives a store holding only those documents' entries; searches never see others.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _checks as checks
from ._errors import ConfigurationError, IFCError, ScoringError
from ._lattice import Label, Lattice
from ._prompt import ChatPrompt
from .scoring.base import HiddenStates, Scorer
from ._sources import LabelledSource

__all__ = ["KNNDatastore"]

_FORMAT = 1


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def hidden_states_of(scorer: Scorer) -> HiddenStates:
    """The scorer's hidden-state capability, or a clear error for a backend without it."""
    hidden = scorer.hidden_states
    if hidden is None:
        raise ScoringError(f"the kNN-LM propagator needs the model's hidden states, which "
                           f"{type(scorer).__name__} does not expose; use an HFScorer (a local model)")
    return hidden


class _Encoder:
    """Hidden states of documents, one forward pass per batch; cached per (model, text)."""

    _lock = threading.Lock()
    _cache: dict[tuple[str, str, str], tuple[Any, np.ndarray]] = {}  # (model, device, text): process-wide

    def __init__(self, scorer: Scorer, prompt: ChatPrompt) -> None:
        self.scorer, self.prompt = scorer, prompt
        self.hidden = hidden_states_of(scorer)
        self.context = prompt.build("", []).ids  # the document is the reply to an empty question
        self.passes = 0
        self.tokens = 0

    def _key(self, text: str) -> tuple[str, str, str]:
        return self.scorer.model_id, str(self.hidden.device), text

    def encode(self, texts: Sequence[str], batch_size: int = 8, progress: Any = None) -> list[tuple[Any, np.ndarray]]:
        """(keys on the model's device, values) per text."""
        results: dict[int, tuple[Any, np.ndarray]] = {}
        todo = []
        for i, text in enumerate(texts):
            with self._lock:
                hit = self._cache.get(self._key(text))
            if hit is not None:
                results[i] = hit
            else:
                todo.append(i)
        for start in range(0, len(todo), batch_size):
            rows = todo[start:start + batch_size]
            for i, entry in zip(rows, self._batch([texts[i] for i in rows])):
                results[i] = entry
                with self._lock:
                    if len(self._cache) > 4096:
                        self._cache.clear()
                    self._cache[self._key(texts[i])] = entry
            if progress is not None:
                progress.update(len(rows))
        return [results[i] for i in range(len(texts))]

    def _batch(self, texts: list[str]) -> list[tuple[Any, np.ndarray]]:
        scorer, ctx = self.scorer, self.context
        docs = [scorer.encode(t.strip()) for t in texts]
        for text, ids in zip(texts, docs):
            if not ids:
                raise ScoringError(f"document {text[:30]!r} has no tokens")
            if len(ctx) + len(ids) > scorer.max_context:
                raise ScoringError(f"a document of {len(ids)} tokens exceeds the model window of "
                                   f"{scorer.max_context}; split it into smaller documents before ingest")
        seqs = [list(ctx) + list(ids) for ids in docs]
        hidden = self.hidden.states(seqs)
        self.passes, self.tokens = self.passes + 1, self.tokens + sum(len(s) for s in seqs)
        n = len(ctx)
        return [(h[n - 1: n - 1 + len(ids)].clone(), np.asarray(ids, dtype=np.int64))
                for h, ids in zip(hidden, docs)]


class KNNDatastore:
    """Entries (key, next token, owning document) of a set of labelled documents.

    Build one with `KNNDatastore.build(scorer, documents)` (exact search; `persistent=True` for a
    faiss index) and keep a persistent one with `save(path)` / `KNNDatastore.load(path, lattice)`.
    Each document's label is stored as its tag, and its text as a fingerprint, so a store is used
    only for the documents it really holds (`covers`).
    """

    def __init__(self, doc_ids: list[str], fingerprints: list[str], tags: list[Label], values: np.ndarray,
                 owners: np.ndarray, *, keys: Any = None, index: Any = None, model_id: str,
                 active: np.ndarray | None = None) -> None:
        if (keys is None) == (index is None):
            raise ConfigurationError("keys, index: give exactly one of keys= (exact search) or index= (faiss)")
        n = len(checks.names(doc_ids, "doc_ids", "document id", empty=True))
        for field, given in (("fingerprints", fingerprints), ("tags", tags)):
            if not isinstance(given, Sequence) or isinstance(given, str) or len(given) != n:
                raise ConfigurationError(f"{field}: give one per document ({n}), got {checks.shown(given)}")
        for i, tag in enumerate(tags):
            checks.instance(tag, Label, f"tags[{i}]", "a Label")
        if np.shape(values) != np.shape(owners) or np.ndim(values) != 1:
            raise ConfigurationError("values, owners: give two 1-d arrays of the same length (one entry each)")
        checks.text(model_id, "model_id")
        self.doc_ids, self.fingerprints, self.tags = doc_ids, fingerprints, tags
        self.values, self.owners = values, owners
        self.keys, self.index, self.model_id = keys, index, model_id
        self._entries = np.arange(len(values)) if active is None else active
        self._position = {d: i for i, d in enumerate(doc_ids)}

    # building and persistence ------------------------------------------------------------------

    @classmethod
    def build(cls, scorer: Scorer, documents: Iterable[LabelledSource], *, prompt: ChatPrompt | None = None,
              persistent: bool = False, batch_size: int = 8, progress: bool = False,
              counter: list[Any] | None = None) -> KNNDatastore:
        """Encode `documents` (one forward pass per batch). Every document needs a label.

        `progress=True` shows a tqdm bar; `counter` receives the encoder, for its passes/tokens.
        """
        checks.scorer(scorer)
        docs = checks.items(documents, LabelledSource, "documents", "LabelledSource")
        if prompt is not None and not callable(getattr(prompt, "build", None)):
            raise checks.wrong_type("prompt", "a ChatPrompt or None", prompt)
        checks.flag(persistent, "persistent")
        checks.whole(batch_size, "batch_size")
        checks.flag(progress, "progress")
        checks.instance(counter, list, "counter", "a list", optional=True)
        for d in docs:
            if d.label is None:
                raise IFCError(f"document {d.id!r} has no label; a datastore only holds labelled documents")
        if len({d.id for d in docs}) != len(docs):
            raise IFCError("duplicate document ids; each document needs its own id")
        encoder = _Encoder(scorer, prompt or ChatPrompt(scorer))
        if counter is not None:
            counter.append(encoder)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(docs), desc="kNN-LM datastore", unit="doc")
        try:
            encoded = encoder.encode([d.text for d in docs], batch_size, bar)
        finally:
            if bar is not None:
                bar.close()
        import torch

        dim = encoder.hidden.hidden_size
        keys = torch.cat([k for k, _ in encoded]) if encoded else torch.zeros((0, dim), device=encoder.hidden.device)
        values = np.concatenate([v for _, v in encoded]) if encoded else np.zeros(0, np.int64)
        owners = np.concatenate([np.full(len(v), i) for i, (_, v) in enumerate(encoded)]) if encoded else np.zeros(0, np.int64)
        store = cls([d.id for d in docs], [fingerprint(d.text) for d in docs], [d.label for d in docs],  # type: ignore[misc]
                    values, owners.astype(np.int64), keys=keys, model_id=scorer.model_id)
        return store.to_faiss() if persistent else store

    def to_faiss(self) -> KNNDatastore:
        """The same entries in a faiss flat (exact L2) index."""
        faiss = _faiss()
        if self.keys is None:
            return self
        keys = self.keys.float().cpu().numpy()
        index = faiss.IndexFlatL2(keys.shape[1])
        index.add(keys)
        return KNNDatastore(self.doc_ids, self.fingerprints, self.tags, self.values, self.owners,
                            index=index, model_id=self.model_id, active=self._entries)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the store (as a faiss index) to the folder `path`; returns it."""
        folder = Path(checks.path(path, "path"))
        if folder.exists() and not folder.is_dir():
            raise ConfigurationError(f"path: {str(folder)!r} is a file; give a folder for the datastore")
        faiss = _faiss()
        store = self.to_faiss()
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(store.index, str(folder / "index.faiss"))
        np.savez(folder / "entries.npz", values=store.values, owners=store.owners)
        meta = {"format": _FORMAT, "model_id": store.model_id, "doc_ids": store.doc_ids,
                "fingerprints": store.fingerprints, "tags": [t.to_json() for t in store.tags]}
        (folder / "documents.json").write_text(json.dumps(meta))
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str], lattice: Lattice) -> KNNDatastore:
        """A store written by `save`; tags are read back as labels of `lattice`."""
        folder = Path(checks.path(path, "path"))
        checks.instance(lattice, Lattice, "lattice", "a Lattice")
        if not folder.is_dir():
            raise ConfigurationError(f"path: {str(folder)!r} is not a folder; give the folder a datastore was "
                                     "saved to (KNNDatastore.save)")
        faiss = _faiss()
        try:
            meta = json.loads((folder / "documents.json").read_text())
            entries = np.load(folder / "entries.npz")
            index = faiss.read_index(str(folder / "index.faiss"))
        except (OSError, ValueError, RuntimeError) as exc:
            raise IFCError(f"cannot read a kNN-LM datastore from {folder}: {exc}; rebuild it with "
                           "KNNDatastore.build(..., persistent=True).save(path)") from exc
        if meta.get("format") != _FORMAT:
            raise IFCError(f"{folder}: datastore format {meta.get('format')!r}, expected {_FORMAT}; rebuild it")
        if index.ntotal != len(entries["values"]):
            raise IFCError(f"{folder}: index and entries disagree; rebuild the datastore")
        return cls(meta["doc_ids"], meta["fingerprints"], [lattice.label(t, field="tags") for t in meta["tags"]],
                   entries["values"], entries["owners"], index=index, model_id=meta["model_id"])

    # what it holds ------------------------------------------------------------------------------

    @property
    def entries(self) -> np.ndarray:
        """Indices of the entries this store searches."""
        return self._entries

    def entries_of(self, doc_id: str) -> np.ndarray:
        """This store's entries owned by `doc_id` (empty when it holds none)."""
        pos = self._position.get(doc_id)
        if pos is None:
            return np.zeros(0, np.int64)
        return self._entries[self.owners[self._entries] == pos]

    def tag_of(self, doc_id: str) -> Label:
        """The label `doc_id` was stored with."""
        if doc_id not in self._position:
            raise ConfigurationError(f"doc_id: {doc_id!r} is not in this datastore")
        return self.tags[self._position[doc_id]]

    def covers(self, documents: Iterable[LabelledSource], model_id: str) -> bool:
        """Whether every document is held here with the same text, encoded by the same model."""
        if model_id != self.model_id:
            return False
        for d in documents:
            pos = self._position.get(d.id)
            if pos is None or self.fingerprints[pos] != fingerprint(d.text):
                return False
        return True

    def restricted(self, doc_ids: Iterable[str]) -> KNNDatastore:
        """A store over the same backing that holds only the entries of `doc_ids`."""
        if isinstance(doc_ids, (str, bytes)):
            raise checks.wrong_type("doc_ids", "a list of document ids", doc_ids)
        wanted = np.array(sorted({self._position[d] for d in doc_ids if d in self._position}), dtype=np.int64)
        view = copy.copy(self)  # the same backing and checked metadata; only the active entries differ
        view._entries = self._entries[np.isin(self.owners[self._entries], wanted)]
        return view

    # search -------------------------------------------------------------------------------------

    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(squared L2 distances, values) of the `k` nearest entries per query row; missing
        neighbours (a store with fewer than k entries) have distance inf and value -1."""
        checks.whole(k, "k")
        m = int(queries.shape[0])
        dist = np.full((m, k), np.inf)
        vals = np.full((m, k), -1, dtype=np.int64)
        if len(self._entries) == 0 or m == 0:
            return dist, vals
        if self.keys is not None:
            d, i = self._exact(queries, min(k, len(self._entries)))
        else:
            d, i = self._faiss(queries, k)
        n = d.shape[1]
        found = i >= 0
        dist[:, :n] = np.where(found, d, np.inf)
        vals[:, :n] = np.where(found, self.values[np.maximum(i, 0)], -1)
        return dist, vals

    def _exact(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        keys = self.keys
        active = torch.as_tensor(self._entries, device=keys.device)
        sub = keys.index_select(0, active) if len(self._entries) < keys.shape[0] else keys
        q = queries.to(keys.device, torch.float32)
        d = (q * q).sum(-1, keepdim=True) + (sub * sub).sum(-1)[None, :] - 2.0 * q @ sub.T
        top, idx = torch.topk(d.clamp_min(0), k, dim=-1, largest=False)
        return top.double().cpu().numpy(), active[idx].cpu().numpy()

    def _faiss(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        q = queries.float().cpu().numpy() if hasattr(queries, "cpu") else np.asarray(queries, np.float32)
        params = None
        if len(self._entries) < self.index.ntotal:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(self._entries.astype(np.int64)))
        d, i = self.index.search(np.ascontiguousarray(q, dtype=np.float32), k, params=params)
        return d.astype(np.float64), i


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise IFCError("persistent kNN-LM datastores need faiss: pip install 'llm-ifc[knn]'") from exc
    return faiss
