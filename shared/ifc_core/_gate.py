"""Where stored labels become trusted labels: the one rule both adapters' retrievers apply.

A record's stored label is believed only when it parses, its filter facets agree with it and its
seal (`RecordSeal`) verifies with the store's key. Otherwise the record is ⊤ and the problem is
reported. Records above the caller's clearance are refused (Chroma's `where` filter is only a
first pass). What is admitted leaves with a provenance seal (`Attestor`, channel
``"retriever"``) that the trackers check, so no component downstream ever reads a bare label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._account import DocumentView
from ._attest import ATTEST_KEY, MAC_KEY, Attestor, RecordSeal, Signer, digest, tool_channel
from ._codec import LABEL_KEY, LABEL_PROBLEM_KEY, LabelCodec
from ._errors import ConfigurationError
from ._lattice import Label, Lattice, as_label
from ._sources import LabelledSource

__all__ = ["RetrievalGate", "Admitted", "Provenance", "RETRIEVER_CHANNEL"]

RETRIEVER_CHANNEL = "retriever"


@dataclass(frozen=True)
class Admitted:
    """One record after the gate: its label, and its metadata for the framework's document.

    `metadata` is None when the record was refused (above the clearance)."""

    id: str
    text: str
    label: Label
    metadata: dict[str, Any] | None
    problem: str | None = None


@dataclass
class RetrievalGate:
    """Checks stored records and seals what the clearance may read.

    `collection` and `key` are those the records were written with (a `LabelledStore` builds its
    own gate: `store.gate(clearance)`). `clearance` is a `Label` or its JSON form; None admits
    every label.
    """

    lattice: Lattice
    key: Signer
    collection: str
    clearance: Any = None
    session: Signer | None = None
    _codec: LabelCodec = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.session is not None and not isinstance(self.session, Signer):
            raise ConfigurationError("RetrievalGate.session: give a Signer (Signer.session()) or None")
        if not isinstance(self.lattice, Lattice):
            raise ConfigurationError(f"RetrievalGate.lattice: give a Lattice, not {type(self.lattice).__name__}")
        if not isinstance(self.key, Signer):
            raise ConfigurationError("RetrievalGate.key: give a Signer (Signer.from_env(), or the store's)")
        if not isinstance(self.collection, str) or not self.collection:
            raise ConfigurationError("RetrievalGate.collection: give the collection's name")
        if self.clearance is not None:
            self.clearance = as_label(self.lattice, self.clearance, "clearance")
        self._codec = LabelCodec(self.lattice)
        self._seal = RecordSeal(self.lattice, self.key, self.collection)
        self._provenance = Provenance(self.lattice, self.session)

    def record_metadata(self, id: str, text: str, label: Label) -> dict[str, Any]:
        """The label keys (label, facets, seal) of a record to store."""
        return {**self._codec.encode(label), MAC_KEY: self._seal.seal(id, text, label)}

    def stored_label(self, id: str, text: str, metadata: Mapping[str, Any] | None) -> tuple[Label, str | None]:
        """(label, None) when the stored label may be believed, else (⊤, the reason)."""
        meta = metadata if isinstance(metadata, Mapping) else {}
        label = self._codec.decode(meta)
        if label is None:
            return self.lattice.top, "stored label missing or unparseable"
        if not self._codec.facets_agree(meta, label):
            return self.lattice.top, "stored filter facets disagree with the stored label"
        problem = self._seal.problem(meta, id, text, label)
        return (self.lattice.top, f"stored label not trusted: {problem}") if problem else (label, None)

    def admit(self, id: str, text: str, metadata: Mapping[str, Any] | None) -> Admitted:
        """The record as the adapters may use it, or refused (metadata None) above the clearance."""
        id, text = str(id), text or ""
        label, problem = self.stored_label(id, text, metadata)
        if self.clearance is not None and not label <= self.clearance:
            return Admitted(id, text, label, None, problem)
        meta = self._provenance.sealed(metadata or {}, RETRIEVER_CHANNEL, LabelledSource(id, text, label), problem)
        return Admitted(id, text, label, meta, problem)


class Provenance:
    """Checks and makes the provenance seals of documents in flight (`Attestor` channels)."""

    def __init__(self, lattice: Lattice, signer: Signer | None = None) -> None:
        self.lattice = lattice
        self.codec = LabelCodec(lattice)
        self.attestor = Attestor(lattice, signer)

    def document(self, doc: DocumentView, channels: tuple[str, ...] = (RETRIEVER_CHANNEL,)
                 ) -> tuple[LabelledSource, str | None, bool]:
        """(`doc` as a labelled source, problem, sealed): its label is believed only when its seal
        verifies on one of `channels`; otherwise it is ⊤, `sealed` is False and the problem says
        why. A sealed document may still carry a problem its gate found (it is then sealed at ⊤)."""
        meta = doc.metadata if isinstance(doc.metadata, Mapping) else {}
        text = doc.text if isinstance(doc.text, str) else str(doc.text)
        doc_id = str(doc.id) if doc.id else "doc-" + digest(text)[:16]
        label = self.codec.decode(meta)
        if label is None:
            return LabelledSource(doc_id, text, self.lattice.top), "no label", False
        if not self.attestor.check(meta.get(ATTEST_KEY), channels, doc_id, text, label):
            return (LabelledSource(doc_id, text, self.lattice.top),
                    "label not sealed by a registered labelled retriever or tool", False)
        problem = meta.get(LABEL_PROBLEM_KEY)
        return LabelledSource(doc_id, text, label), (str(problem) if problem else None), True

    def reseal(self, doc: DocumentView, channel: str, from_channels: tuple[str, ...] = (RETRIEVER_CHANNEL,)
               ) -> dict[str, Any]:
        """`doc`'s metadata sealed for `channel` (a labelled tool seals its retriever's documents
        with its own name); a label that does not verify is sealed as ⊤."""
        source, problem, _ = self.document(doc, from_channels)
        return self.sealed(doc.metadata, channel, source, problem)

    def for_tool(self, name: Any, description: Any, where: str) -> Callable[[DocumentView], dict[str, Any]]:
        """What reseals a document for labelled tool `name` (`reseal` on its channel), once the
        tool's `name` and `description` are checked (`where`: the caller, for the errors)."""
        for field_, value in (("name", name), ("description", description)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{where}.{field_}: give the tool's {field_} as non-empty text")
        channel = tool_channel(name)
        return lambda doc: self.reseal(doc, channel)

    def sealed(self, metadata: Mapping[str, Any], channel: str, source: LabelledSource,
               problem: str | None = None) -> dict[str, Any]:
        """`metadata` without stale label keys, plus `source`'s label sealed for `channel`."""
        assert source.label is not None
        meta = {k: v for k, v in dict(metadata).items() if not str(k).startswith("ifc_")}
        meta[LABEL_KEY] = self.codec.encode(source.label)[LABEL_KEY]
        meta[ATTEST_KEY] = self.attestor.seal(channel, source.id, source.text, source.label)
        if problem:
            meta[LABEL_PROBLEM_KEY] = problem
        return meta
