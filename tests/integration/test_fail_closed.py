"""Any error, truncation or doubt gives the conservative label, with the reason recorded."""

import numpy as np
import pytest

from ifc_core import Chain, LabelledSource, ScoringRun

from .facts import CONF, ONE_DOC, docs

pytestmark = pytest.mark.model

QUERY = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
DOCS = docs(CONF, {"capital": "internal", "launch": "secret"})


def check_fallback(d, words):
    assert d.fallback_reason is not None and words in d.fallback_reason
    assert d.label == d.conservative_label == CONF.label("secret")
    assert d.admitted == ["capital", "launch"] and d.withheld == []
    assert "fallback_reason" in d.to_dict()


def test_scorer_error(permissive, monkeypatch):
    def boom(self, contexts):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(ScoringRun, "score", boom)
    check_fallback(permissive.label(QUERY, DOCS, ONE_DOC[1]), "out of memory")


def test_nan_scores(permissive, monkeypatch):
    original = ScoringRun.score

    def poisoned(self, contexts):
        return [np.full_like(s, np.nan) for s in original(self, contexts)]

    monkeypatch.setattr(ScoringRun, "score", poisoned)
    check_fallback(permissive.label(QUERY, DOCS, ONE_DOC[1]), "non-finite")


def test_context_longer_than_the_model_window(permissive, scorer):
    long_doc = LabelledSource("manual", "The manual says nothing. " * 2000, CONF.label("secret"))
    d = permissive.label(QUERY, [DOCS[0], long_doc], ONE_DOC[1])
    assert d.fallback_reason is not None and "window" in d.fallback_reason
    assert d.label == CONF.label("secret") and d.passes == 0


@pytest.mark.parametrize("output", ["", "   "])
def test_empty_output(permissive, output):
    check_fallback(permissive.label(QUERY, DOCS, output), "empty output")


def test_label_from_another_lattice(permissive):
    stranger = LabelledSource("x", "Unrelated.", Chain(["low", "high"]).label("low"))
    d = permissive.label(QUERY, [*DOCS, stranger], ONE_DOC[1])
    assert "not in this lattice" in d.fallback_reason
    assert d.label == CONF.top and d.admitted == ["capital", "launch", "x"]


def test_unlabelled_document_is_top(permissive):
    unlabelled = LabelledSource("mystery", "Zelbrook is the capital of Freedonia, says a note.")
    d = permissive.label(QUERY, [DOCS[1], unlabelled], ONE_DOC[1])
    assert d.conservative_label == CONF.top
    assert "mystery: unlabelled, treated as ⊤" in d.notes
    assert d.label == CONF.top and "mystery" in d.admitted  # the answer came from the unlabelled note


def test_enforce_fails_closed_too(permissive, monkeypatch):
    def boom(self, *args):
        raise RuntimeError("scorer crashed")

    monkeypatch.setattr(ScoringRun, "score", boom)
    monkeypatch.setattr(ScoringRun, "seed", boom)
    d = permissive.enforce(QUERY, DOCS, max_new_tokens=16)
    assert "scorer crashed" in d.fallback_reason
    assert d.label == CONF.label("secret") and not d.regenerated and d.output
