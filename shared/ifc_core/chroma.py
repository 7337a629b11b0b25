"""Labelled Chroma collections (needs the `chroma` extra).

Records written by `LabelledStore.add` carry their label as flat metadata that every chromadb 1.x
and both frameworks' Chroma integrations accept: a canonical key ``ifc_label`` (the label's JSON
text) plus scalar facets that `where` filters can use (``ifc_level`` for a chain,
``ifc_reader_<name>`` and ``ifc_tag_<name>`` booleans, prefixed by component in a product).

Each label is sealed with the application key (HMAC over collection, id, text hash, label and
lattice) and the lattice is recorded in the collection's metadata: a record changed outside the
ingest API, or read with another lattice, is ⊤ and reported, never trusted. A caller's
clearance is pushed into the query as a `where` filter and checked again in Python after
retrieval (`RetrievalGate`).

Importing this module registers `MiniLMEmbedding` with Chroma, so collections created with it
reopen in any process that imported it (import it before opening collections).
"""

from __future__ import annotations

import re
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings

from . import _checks as checks
from ._attest import KEY_ENV, Signer
from ._codec import LABEL_KEY, LabelCodec
from ._errors import ConfigurationError, IFCError
from ._gate import RetrievalGate
from ._knn_store import KNNDatastore
from ._lattice import Label, Lattice, as_label
from ._minilm import MiniLMEmbedding
from .scoring.hf import HFScorer
from ._sources import LabelledSource

__all__ = ["LABEL_KEY", "LabelCodec", "LabelledStore", "MiniLMEmbedding", "Retrieved"]

_log = logging.getLogger("llm_ifc")
LATTICE_KEY = "ifc_lattice"  # collection metadata: the lattice the labels belong to
LATTICE_MAC_KEY = "ifc_lattice_mac"


def _settings() -> Settings:
    # A fresh object each time: chromadb.HttpClient writes its server address into the Settings
    # it is given, which would turn every later client built from a shared one into an HTTP client.
    return Settings(anonymized_telemetry=False)


@dataclass
class Retrieved:
    """What a clearance-filtered query returned, and what it refused."""

    sources: list[LabelledSource]
    scores: list[float] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)  # ids whose stored label is not trusted (so ⊤)
    refused: list[str] = field(default_factory=list)  # ids above the clearance (caught in Python)
    problems: dict[str, str] = field(default_factory=dict)  # why each untrusted label was not believed


_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{1,61})[a-zA-Z0-9]")


def _check_open(name: Any, lattice: Any, path: Any, url: Any, client: Any, embedding_function: Any,
                insecure_dev_key: Any) -> None:
    """The arguments of `LabelledStore.open`, checked before Chroma is touched."""
    checks.text(name, "name", what="a collection name")
    if not _NAME.fullmatch(name) or ".." in name or re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", name):
        raise ConfigurationError(f"name: {name!r} is not a Chroma collection name; give 3-63 letters, digits, "
                                 "'.', '_' or '-', starting and ending with a letter or digit, without '..'")
    checks.instance(lattice, Lattice, "lattice", "a Lattice")
    checks.flag(insecure_dev_key, "insecure_dev_key")
    if client is not None and (path is not None or url is not None):
        raise ConfigurationError("client: give client=... or path=/url=, not both")
    if client is not None and not callable(getattr(client, "get_or_create_collection", None)):
        raise checks.wrong_type("client", "a chromadb client", client)
    if embedding_function is not None and not callable(embedding_function):
        raise checks.wrong_type("embedding_function", "a Chroma embedding function", embedding_function)
    if path is not None:
        folder = Path(checks.path(path, "path"))
        if folder.exists() and not folder.is_dir():
            raise ConfigurationError(f"path: {str(path)!r} is a file; give the folder of an embedded Chroma")
        if not folder.absolute().parent.is_dir():
            raise ConfigurationError(f"path: the folder {str(folder.absolute().parent)!r} does not exist; create it")
    if url is not None:
        checks.url(url, "url")
        if urlparse(url).path not in ("", "/") or urlparse(url).query:
            raise ConfigurationError(f"url: give only the server's address, like http://127.0.0.1:8000, not {url!r}")


def _client(path: str | os.PathLike[str] | None, url: str | None) -> Any:
    if path is not None and url is not None:
        raise ConfigurationError("path, url: give either path= (embedded Chroma) or url= (a Chroma server), not both")
    if url is not None:
        parsed = urlparse(url)
        return chromadb.HttpClient(host=parsed.hostname, port=parsed.port or 8000,
                                   ssl=parsed.scheme == "https", settings=_settings())
    if path is not None:
        return chromadb.PersistentClient(path=os.fspath(path), settings=_settings())
    return chromadb.EphemeralClient(settings=_settings())


def _embedding_of(collection: Any) -> Any:
    """The embedding function a collection really uses: the persisted one when it has one
    (Chroma rebuilds it from its configuration), else the one it was opened with."""
    config = getattr(collection, "configuration", None)
    persisted = config.get("embedding_function") if isinstance(config, dict) else None
    return persisted or getattr(collection, "_embedding_function", None)


def _check_embedding(collection: Any) -> None:
    ef = _embedding_of(collection)
    if ef is None or type(ef).__name__ in {"DefaultEmbeddingFunction", "ONNXMiniLM_L6_V2"}:
        raise IFCError(
            f"collection {collection.name!r} would embed with Chroma's default embedding function, "
            "which downloads a model on first use. Pass embedding_function=MiniLMEmbedding() (offline) "
            "or your own Chroma embedding function"
        )


def _store_key(key: Signer | bytes | str | None, insecure_dev_key: bool) -> Signer:
    if key is not None and insecure_dev_key:
        raise ConfigurationError("LabelledStore: give key=... or insecure_dev_key=True, not both")
    if isinstance(key, Signer):
        return key
    if key is not None:
        return Signer(key)
    if insecure_dev_key:
        _log.warning("LabelledStore: insecure development key in use; anyone can forge its labels")
        return Signer.insecure_dev()
    env = Signer.from_env()
    if env is None:
        raise ConfigurationError(
            f"LabelledStore needs a key to seal and check its labels: set ${KEY_ENV} (e.g. "
            "`export LLM_IFC_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')`) or pass "
            "key=...; for a throwaway local experiment only, insecure_dev_key=True")
    return env


class LabelledStore:
    """A Chroma collection of labelled documents.

    `LabelledStore.open(name, lattice, path=...)` for embedded Chroma, `url=` for a server, or
    neither for an in-memory store; `LabelledStore(collection, lattice)` wraps one you opened.

    Every stored label is sealed with the application key (`key=`, default ``$LLM_IFC_KEY``): an
    HMAC over (collection, id, text hash, label, lattice). A record whose label was changed by a
    plain Chroma client, whose filter facets disagree with its label, or whose seal fails is ⊤
    and reported, never trusted. The lattice is stored in the collection's metadata and checked
    on open, so a store cannot be reopened with a reordered lattice. Without a key the store
    refuses to open, except with ``insecure_dev_key=True`` (a public key: local experiments only).
    """

    def __init__(self, collection: Any, lattice: Lattice, *, client: Any = None,
                 path: str | os.PathLike[str] | None = None, key: Signer | bytes | str | None = None,
                 insecure_dev_key: bool = False) -> None:
        if not isinstance(lattice, Lattice):
            raise ConfigurationError(f"LabelledStore.lattice: give a Lattice, not {type(lattice).__name__}")
        if not all(callable(getattr(collection, m, None)) for m in ("upsert", "query", "get", "modify")):
            raise checks.wrong_type("collection", "a chromadb Collection (or use LabelledStore.open)", collection)
        checks.path(path, "path", optional=True)
        checks.flag(insecure_dev_key, "insecure_dev_key")
        _check_embedding(collection)
        self.signer = _store_key(key, insecure_dev_key)
        self.collection = collection
        self.path = path  # the embedded Chroma folder, when there is one
        self.client = client  # the chromadb client it came from, for integrations that need one
        self.lattice = lattice
        self.codec = LabelCodec(lattice)
        self._check_lattice()
        self._gate = self.gate()

    def _check_lattice(self) -> None:
        spec = json.dumps(self.lattice.spec(), sort_keys=True, separators=(",", ":"))
        mac = self.signer.sign("lattice", self.collection.name, spec)
        meta = dict(self.collection.metadata or {})
        if LATTICE_KEY not in meta:
            self.collection.modify(metadata={**meta, LATTICE_KEY: spec, LATTICE_MAC_KEY: mac})
            return
        if meta[LATTICE_KEY] != spec:
            raise ConfigurationError(
                f"collection {self.collection.name!r} holds labels of the lattice {meta[LATTICE_KEY]}, "
                f"not of {spec}; open it with the lattice it was written with")
        if not self.signer.verify(meta.get(LATTICE_MAC_KEY), "lattice", self.collection.name, spec):
            raise ConfigurationError(
                f"collection {self.collection.name!r}: its lattice record is not sealed with this key "
                "(another key, or changed outside llm-ifc); use the key it was written with")

    def gate(self, clearance: Any = None) -> RetrievalGate:
        """The check every retriever over this store applies (`IFCRetriever.from_store` uses it)."""
        return RetrievalGate(self.lattice, self.signer, self.collection.name, clearance)

    @classmethod
    def open(cls, name: str, lattice: Lattice, *, path: str | os.PathLike[str] | None = None,
             url: str | None = None, client: Any = None, embedding_function: Any = None,
             key: Signer | bytes | str | None = None, insecure_dev_key: bool = False) -> LabelledStore:
        _check_open(name, lattice, path, url, client, embedding_function, insecure_dev_key)
        signer = _store_key(key, insecure_dev_key)  # refuse before touching Chroma
        client = client or _client(path, url)
        ef = embedding_function or MiniLMEmbedding()
        try:
            collection = client.get_or_create_collection(name, embedding_function=ef)
        except ValueError as exc:
            raise IFCError(f"cannot open collection {name!r} with {type(ef).__name__}: {exc}") from exc
        return cls(collection, lattice, client=client, path=path, key=signer)

    def add(self, documents: Iterable[LabelledSource], *,
            metadata: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Ingest labelled documents (upsert by id). Every document needs a label."""
        docs = checks.items(documents, LabelledSource, "documents", "LabelledSource")
        if metadata is not None and not (isinstance(metadata, Mapping)
                                         and all(isinstance(m, Mapping) for m in metadata.values())):
            raise checks.wrong_type("metadata", "a mapping of document id to a metadata mapping", metadata)
        metas = []
        for d in docs:
            if d.label is None:
                raise IFCError(f"document {d.id!r} has no label; the ingest API only stores labelled data")
            label = as_label(self.lattice, d.label, f"documents[{d.id!r}].label")
            extra = dict((metadata or {}).get(d.id, {}))
            clash = sorted(k for k in extra if k.startswith("ifc_"))
            if clash:
                raise IFCError(f"document {d.id!r}: metadata keys {clash} are reserved for labels")
            metas.append({**extra, **self._gate.record_metadata(d.id, d.text, label)})
        if docs:
            self.collection.upsert(ids=[d.id for d in docs], documents=[d.text for d in docs], metadatas=metas)

    def documents(self) -> list[LabelledSource]:
        """Every record as a labelled source; a label that is missing or fails its checks is ⊤."""
        res = self.collection.get(include=["documents", "metadatas"])
        return [LabelledSource(str(i), text or "", self.label_of(meta, id=str(i), text=text or ""))
                for i, text, meta in zip(res["ids"], res["documents"], res["metadatas"])]

    def knn_datastore(self, scorer: HFScorer, path: str | os.PathLike[str] | None = None) -> KNNDatastore:
        """The kNN-LM datastore of the whole collection, for `KNNLMPropagator(datastore=...)`.

        Kept in the folder `path` (default: ``knn-<collection>`` inside the embedded Chroma
        folder): loaded when it holds every record unchanged, else built with a progress bar and
        saved there.
        """
        checks.scorer(scorer)
        checks.path(path, "path", optional=True)
        if path is None:
            if self.path is None:
                raise IFCError("knn_datastore: pass path=... (a folder); this store has no Chroma folder to keep it in")
            path = Path(self.path) / f"knn-{self.collection.name}"
        docs = self.documents()
        if (Path(path) / "documents.json").exists():
            store = KNNDatastore.load(path, self.lattice)
            if store.covers(docs, scorer.model_id) and len(store.doc_ids) == len(docs):
                return store
        store = KNNDatastore.build(scorer, docs, persistent=True, progress=True)
        store.save(path)
        return store

    def label_of(self, metadata: Mapping[str, Any] | None, *, id: str, text: str) -> Label:
        """A record's label; ⊤ when missing or when it fails its checks."""
        return self._gate.stored_label(id, text, metadata)[0]

    def query(self, text: str, clearance: Any, k: int = 4) -> Retrieved:
        """The `k` nearest records the clearance may read (filtered in Chroma, then re-checked)."""
        checks.text(text, "text", empty=True)
        clearance = as_label(self.lattice, clearance, "clearance")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"k: give a positive number of results, got {k!r}")
        res = self.collection.query(query_texts=[text], n_results=k, where=self.codec.where(clearance),
                                    include=["documents", "metadatas", "distances"])
        return self.filter(res["ids"][0], res["documents"][0], res["metadatas"][0], clearance,
                           scores=[1.0 - d for d in res["distances"][0]])

    def filter(self, ids: list[str], texts: list[str], metadatas: list[Any], clearance: Any, *,
               scores: list[float] | None = None) -> Retrieved:
        """The Python re-check: trusted labels ⊑ `clearance`; failed checks become ⊤."""
        if not len(ids) == len(texts) == len(metadatas) or (scores is not None and len(scores) != len(ids)):
            raise ConfigurationError("ids, texts, metadatas, scores: give one of each per record")
        gate = self.gate(clearance)
        out = Retrieved([])
        for i, (rid, text, meta) in enumerate(zip(ids, texts, metadatas)):
            got = gate.admit(str(rid), text or "", meta)
            if got.problem:
                out.unlabelled.append(got.id)
                out.problems[got.id] = got.problem
            if got.metadata is None:
                out.refused.append(got.id)
                continue
            out.sources.append(LabelledSource(got.id, got.text, got.label))
            if scores is not None:
                out.scores.append(scores[i])
        return out
