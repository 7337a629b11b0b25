"""The label search, the tolerance test, memoisation and the safety wrapper on a MockScorer."""

import numpy as np
import pytest

from ifc_core import ChatPrompt, IntrospectionPropagator, MockScorer, PermissivePropagator, Readers, Scorer, Tolerance
from ifc_core import LabelledSource
from ifc_core.scoring import MemoScorer

from .mock_cases import ANSWER, CONF, TEXTS, answering, docs, needs, query, scorer


def test_mock_is_a_scorer_with_exact_round_trips():
    s = scorer("Zelbrook")
    assert isinstance(s, Scorer) and s.hidden_states is None
    text = "  Two  spaces,\ttabs\nand lines. "
    assert s.decode(s.encode(text)) == text
    prompt = ChatPrompt(s).build("Q?", docs({"capital": "internal", "launch": "secret"}))
    assert set(prompt.spans) == {"capital", "launch"}
    start, end = prompt.spans["capital"]
    assert TEXTS["capital"] in s.decode(prompt.ids[start:end])


def test_label_is_the_join_of_the_documents_the_scores_need():
    d = PermissivePropagator(scorer("Zelbrook")).label(
        query(), docs({"launch": "secret", "capital": "internal", "salary": "confidential"}), ANSWER)
    assert d.fallback_reason is None and d.label == CONF.label("internal")
    assert d.admitted == ["capital"] and set(d.withheld) == {"launch", "salary"}
    assert d.conservative_label == CONF.label("secret") and d.improved


def test_two_needed_documents_and_the_query_label():
    d = PermissivePropagator(scorer("Zelbrook", "May")).label(
        query("internal"), docs({"capital": "internal", "launch": "confidential", "salary": "secret"}), ANSWER)
    assert d.label == CONF.label("confidential") and d.admitted == ["capital", "launch"]
    d = PermissivePropagator(scorer()).label(query("internal"), docs({"capital": "secret"}), ANSWER)
    assert d.label == CONF.label("internal")  # nothing needed: the query's label, never below it


def test_readers_search_walks_the_join_closure():
    r = Readers(["alice", "bob", "carol"])
    documents = [LabelledSource("capital", TEXTS["capital"], r.label(["alice", "bob"])),
                 LabelledSource("salary", TEXTS["salary"], r.label(["alice"])),
                 LabelledSource("launch", TEXTS["launch"], r.label(["bob", "carol"]))]
    d = PermissivePropagator(scorer("Zelbrook")).label(LabelledSource("q", "Q?", r.bottom), documents, ANSWER)
    assert d.label == r.label(["alice", "bob"]) and d.admitted == ["capital"]
    assert len(d.candidates) > 2


def one_token_worse(context, output, drop=3.0, n=12):
    """Without the capital document one token of 12 gets `drop` nats less likely."""
    values = np.full(n, -0.1)
    if "Zelbrook" not in context:
        values[5] -= drop
    return values


def test_tolerance_per_token_guard_catches_one_copied_token():
    s = MockScorer(one_token_worse)
    output = "w " * 6  # 12 tokens: 6 words, 6 spaces
    assert len(s.encode(output)) == 12
    documents = docs({"capital": "secret"})
    guarded = PermissivePropagator(s, tolerance=Tolerance(0.5, 2.0)).label(query(), documents, output)
    unguarded = PermissivePropagator(s, tolerance=Tolerance(0.5, None)).label(query(), documents, output)
    assert guarded.label == CONF.label("secret")  # the mean grew by 0.25 nats only, one token by 3
    assert unguarded.label == CONF.label("public")
    bottom = next(c for c in guarded.candidates if c.label == "public")
    assert bottom.max_token_increase == pytest.approx(3.0) and bottom.mean_increase == pytest.approx(0.25)


def test_memo_scorer_scores_each_pair_once():
    inner = scorer("Zelbrook")
    memo = MemoScorer(inner)
    documents = docs({"capital": "internal", "launch": "secret"})
    first = PermissivePropagator(memo).label(query(), documents, ANSWER)
    calls = inner.calls
    again = PermissivePropagator(memo, tolerance=0.1).label(query(), documents, ANSWER)
    assert inner.calls == calls and again.label == first.label and again.passes == 0
    assert memo.encode("a b") == inner.encode("a b") and memo.hidden_states is None


def test_enforce_regenerates_from_the_admitted_documents_only():
    s = MockScorer(needs("Zelbrook"), reply=answering())
    d = PermissivePropagator(s).enforce(query(), docs({"salary": "confidential", "capital": "internal",
                                                       "launch": "secret"}), max_new_tokens=16)
    assert d.fallback_reason is None and d.mode == "enforce" and d.regenerated
    assert d.label == CONF.label("internal") and d.admitted == ["capital"] and "Zelbrook" in d.output
    first, released = s.reply.contexts
    assert TEXTS["salary"] in first and TEXTS["launch"] in first
    assert TEXTS["capital"] in released and TEXTS["salary"] not in released and TEXTS["launch"] not in released


def test_introspection_on_the_mock_parses_the_reply():
    s = MockScorer(needs(), reply=lambda context: "capital" if "Which documents" in context else "Zelbrook.")
    d = IntrospectionPropagator(s).label(query(), docs({"capital": "internal", "launch": "secret"}), ANSWER)
    assert d.fallback_reason is None and d.label == CONF.label("internal")
    e = IntrospectionPropagator(s).enforce(query(), docs({"capital": "internal", "launch": "secret"}))
    assert e.label == CONF.label("internal") and e.regenerated and e.output == "Zelbrook."
