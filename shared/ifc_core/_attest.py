"""Tamper-evident labels: HMAC seals on stored records and on everything that carries a label
between components (documents leaving a labelled retriever, tool results, enforced answers).

A label found in metadata is believed only when its seal verifies: it was written by this
library's trusted registration path (`LabelledStore.add`, `IFCRetriever`, a labelled tool, an
enforce wrapper) with the application's key. Anything else (a label written by a plain Chroma
client, forged in a tool's result, edited after a checkpoint round-trip) is ⊤.

Two kinds of key:

- the **application key** (`Signer.from_env()`, ``$LLM_IFC_KEY``, or ``key=...``): required by
  `LabelledStore`, so that stored labels survive restarts and are checked in every process;
- the **session key** (`Signer.session()`): the application key when one is set, else a random
  key made once per process. Seals made with it are checked in the same process only; set
  ``LLM_IFC_KEY`` to resume checkpointed threads in another process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from . import _checks as checks
from ._errors import ConfigurationError
from ._lattice import Label, Lattice

__all__ = ["Signer", "Attestor", "RecordSeal", "KEY_ENV", "ATTEST_KEY", "MAC_KEY", "digest", "tool_channel"]

KEY_ENV = "LLM_IFC_KEY"
ATTEST_KEY = "ifc_attest"  # provenance seal of a labelled document in flight
MAC_KEY = "ifc_mac"  # seal of a stored record
_INSECURE = b"llm-ifc insecure development key: never use it in production"
_SESSION: dict[str, Signer] = {}
_SESSION_LOCK = threading.Lock()


def tool_channel(tool: str) -> str:
    """The seal channel of labelled tool `tool`: its documents keep their labels only under it."""
    return f"tool:{tool}"


def digest(text: str) -> str:
    """SHA-256 of a text (lone surrogates included), hex."""
    checks.text(text, "text", empty=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _label_json(label: Label) -> str:
    return json.dumps(label.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _lattice_id(lattice: Lattice) -> str:
    return digest(json.dumps(lattice.spec(), sort_keys=True, separators=(",", ":")))[:16]


class Signer:
    """HMAC-SHA256 over typed fields with one secret key.

    `sign(kind, *fields)` and `verify(tag, kind, *fields)`; `kind` separates the domains (a record
    seal can never pass as a document seal).
    """

    def __init__(self, key: bytes | str, *, insecure: bool = False) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not isinstance(key, bytes):
            raise ConfigurationError(f"key: give bytes or a string, not {type(key).__name__}")
        if len(key) < 16:
            raise ConfigurationError(
                f"key: at least 16 bytes are needed, got {len(key)}; generate one with "
                f"`python -c 'import secrets; print(secrets.token_hex(32))'` and set ${KEY_ENV}")
        self._key = key
        self.insecure = insecure

    @classmethod
    def from_env(cls) -> Signer | None:
        """The application key from ``$LLM_IFC_KEY``; None when it is not set."""
        value = os.environ.get(KEY_ENV)
        return cls(value) if value else None

    @classmethod
    def session(cls) -> Signer:
        """The application key when set, else one random key per process (shared)."""
        env = cls.from_env()
        if env is not None:
            return env
        with _SESSION_LOCK:
            if "random" not in _SESSION:
                _SESSION["random"] = cls(secrets.token_bytes(32))
            return _SESSION["random"]

    @classmethod
    def insecure_dev(cls) -> Signer:
        """A fixed, publicly known key for local development and tests only: anyone can forge
        labels sealed with it. `LabelledStore(..., insecure_dev_key=True)` uses it and says so."""
        return cls(_INSECURE, insecure=True)

    def sign(self, kind: str, *fields: str) -> str:
        message = json.dumps([kind, *fields], ensure_ascii=True, separators=(",", ":")).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:40]

    def verify(self, tag: object, kind: str, *fields: str) -> bool:
        return isinstance(tag, str) and hmac.compare_digest(tag, self.sign(kind, *fields))

    def __repr__(self) -> str:
        return "Signer(<insecure development key>)" if self.insecure else "Signer(<secret>)"


class Attestor:
    """Seals a label to one piece of text for one channel, and checks such seals.

    A channel names the registration path: ``"retriever"`` for documents an `IFCRetriever`
    returned, ``"tool:<name>"`` for the documents of a labelled retriever tool, ``"output"`` for
    an answer an enforce wrapper released. The seal binds channel, id, the text's hash, the label
    and the lattice, so changing any of them (or replaying it on another channel) breaks it.
    """

    def __init__(self, lattice: Lattice, signer: Signer | None = None) -> None:
        self.lattice = checks.instance(lattice, Lattice, "lattice", "a Lattice")
        checks.instance(signer, Signer, "signer", "a Signer (Signer.from_env(), Signer.session())", optional=True)
        self.signer = signer or Signer.session()
        self._lattice = _lattice_id(lattice)

    def _fields(self, channel: str, id: str, text: str, label: Label) -> tuple[str, ...]:
        return (channel, str(id), digest(text), _label_json(label), self._lattice)

    def seal(self, channel: str, id: str, text: str, label: Label) -> str:
        return self.signer.sign("attest", *self._fields(channel, id, text, label))

    def check(self, tag: object, channels: tuple[str, ...], id: str, text: str, label: Label) -> bool:
        """True when `tag` seals `label` to this text on one of `channels`."""
        if label.lattice != self.lattice:
            return False
        return any(self.signer.verify(tag, "attest", *self._fields(c, id, text, label)) for c in channels)


class RecordSeal:
    """The seal of a stored record: HMAC over (collection, id, text hash, label, lattice).

    `problem(meta, id, text, label)` says why a record's stored label may not be believed, or
    None when it may.
    """

    def __init__(self, lattice: Lattice, signer: Signer, collection: str) -> None:
        checks.instance(lattice, Lattice, "lattice", "a Lattice")
        checks.instance(signer, Signer, "signer", "a Signer (Signer.from_env())")
        checks.text(collection, "collection", what="the collection's name")
        self.lattice, self.signer, self.collection = lattice, signer, collection
        self._lattice = _lattice_id(lattice)

    def _fields(self, id: str, text: str, label: Label) -> tuple[str, ...]:
        return (self.collection, str(id), digest(text), _label_json(label), self._lattice)

    def seal(self, id: str, text: str, label: Label) -> str:
        return self.signer.sign("record", *self._fields(id, text, label))

    def problem(self, meta: Mapping[str, Any], id: str, text: str, label: Label) -> str | None:
        if not self.signer.verify(meta.get(MAC_KEY), "record", *self._fields(id, text, label)):
            return ("its seal does not match (label, text or id changed outside the ingest API, "
                    "or another key or lattice)")
        return None
