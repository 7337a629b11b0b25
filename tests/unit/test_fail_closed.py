"""Any error, truncation or doubt gives the conservative label, with the reason recorded (MockScorer)."""

import numpy as np
import pytest

from ifc_core import (Chain, ConservativePropagator, KNNLMPropagator, LabelledSource, MockScorer, PermissivePropagator,
                      Tolerance)

from .mock_cases import ANSWER, CONF, answering, docs, needs, query

DOCS = docs({"capital": "internal", "launch": "secret"})


def check_fallback(d, words):
    assert d.fallback_reason is not None and words in d.fallback_reason, d.fallback_reason
    assert d.label == d.conservative_label == CONF.label("secret")
    assert d.admitted == ["capital", "launch"] and d.withheld == []
    assert "fallback_reason" in d.to_dict()


def boom(context, output):
    raise RuntimeError("CUDA out of memory")


@pytest.mark.parametrize("logprobs, words", [
    (boom, "out of memory"),
    (lambda c, o: float("nan"), "non-finite"),
    (lambda c, o: [-0.1, float("-inf")], "scores for a"),  # the wrong number of values
    (lambda c, o: -np.inf, "non-finite"),
])
def test_scorer_errors_and_poisoned_scores(logprobs, words):
    check_fallback(PermissivePropagator(MockScorer(logprobs)).label(query(), DOCS, ANSWER), words)


def test_a_failure_after_the_first_step_still_falls_back():
    calls = []

    def flaky(context, output):
        calls.append(context)
        if len(calls) > 1:
            raise ConnectionError("server went away")
        return -0.1

    d = PermissivePropagator(MockScorer(flaky)).label(query(), DOCS, ANSWER)
    check_fallback(d, "server went away")
    assert d.passes >= 1 and len(calls) >= 2  # the root was scored; the next step failed


def test_context_longer_than_the_model_window():
    long_doc = LabelledSource("manual", "The manual says nothing. " * 200, CONF.label("secret"))
    d = PermissivePropagator(MockScorer(needs(), max_context=500)).label(query(), [DOCS[0], long_doc], ANSWER)
    assert "window" in d.fallback_reason and d.label == CONF.label("secret") and d.passes == 0


@pytest.mark.parametrize("output", ["", "   "])
def test_empty_output(output):
    check_fallback(PermissivePropagator(MockScorer(needs())).label(query(), DOCS, output), "empty output")


def test_label_from_another_lattice():
    stranger = LabelledSource("x", "Unrelated.", Chain(["low", "high"]).label("low"))
    d = PermissivePropagator(MockScorer(needs())).label(query(), [*DOCS, stranger], ANSWER)
    assert "not in this lattice" in d.fallback_reason
    assert d.label == CONF.top and d.admitted == ["capital", "launch", "x"]


def test_duplicate_ids_keep_every_label():
    twins = [LabelledSource("a", "One.", CONF.label("internal")), LabelledSource("a", "Two.", CONF.label("secret"))]
    d = PermissivePropagator(MockScorer(needs())).label(query(), twins, ANSWER)
    assert "duplicate" in d.fallback_reason and d.label == CONF.label("secret")


def test_unlabelled_document_is_top():
    unlabelled = LabelledSource("mystery", "Zelbrook is the capital of Freedonia, says a note.")
    d = PermissivePropagator(MockScorer(needs("Zelbrook"))).label(query(), [DOCS[1], unlabelled], ANSWER)
    assert d.conservative_label == CONF.top and "mystery: unlabelled, treated as ⊤" in d.notes
    assert d.label == CONF.top and "mystery" in d.admitted  # the answer came from the unlabelled note


class Undecodable(MockScorer):
    def decode(self, ids):
        raise ConnectionError("the tokenizer server is down")


def test_output_ids_that_cannot_be_decoded():
    s = Undecodable(needs())
    ids = s.encode(ANSWER)
    check_fallback(PermissivePropagator(s).label(query(), DOCS, ids), "tokenizer server is down")
    d = ConservativePropagator(s).label(query(), DOCS, ids)  # needs no model: only the text is lost
    assert d.label == CONF.label("secret") and d.fallback_reason is None and "not decoded" in d.notes[-1]


def test_enforce_releases_the_full_context_answer_at_the_conservative_label():
    calls = []

    def fails_after_generation(context, output):  # the generation's own log-probabilities, then errors
        calls.append(context)
        return -0.1 if len(calls) == 1 else boom(context, output)

    s = MockScorer(fails_after_generation, reply=answering())
    d = PermissivePropagator(s).enforce(query(), DOCS, max_new_tokens=16)
    assert "out of memory" in d.fallback_reason and d.label == CONF.label("secret")
    assert not d.regenerated and d.output == "Zelbrook is the capital." and len(s.reply.contexts) == 1


def test_enforce_with_a_failing_generation():
    def broken(context):
        raise TimeoutError("generation timed out")

    d = PermissivePropagator(MockScorer(needs(), reply=broken)).enforce(query(), DOCS)
    assert "timed out" in d.fallback_reason and d.label == CONF.label("secret") and d.output == ""


def test_enforce_with_an_empty_generation():
    d = PermissivePropagator(MockScorer(needs(), reply=lambda c: "")).enforce(query(), DOCS)
    assert "empty output" in d.fallback_reason and d.label == CONF.label("secret")


def test_knnlm_needs_hidden_states_and_says_so():
    prop = KNNLMPropagator(MockScorer(needs(), reply=answering()))
    d = prop.label(query(), DOCS, ANSWER)
    assert "hidden states" in d.fallback_reason and d.label == CONF.label("secret")
    e = prop.enforce(query(), DOCS, max_new_tokens=8)
    assert "hidden states" in e.fallback_reason and e.label == CONF.label("secret")


def test_a_failure_in_the_leave_one_in_contexts_falls_back():
    # every candidate passes the base test, so the default criterion ("alone") asks for the gains
    # of the withheld documents; the context with the launch document alone is poisoned
    def poisoned(context, output):
        return float("nan") if "Heron" in context and "Zelbrook" not in context else -0.1

    check_fallback(PermissivePropagator(MockScorer(poisoned)).label(query(), DOCS, ANSWER), "non-finite")
    base = PermissivePropagator(MockScorer(poisoned), tolerance=Tolerance()).label(query(), DOCS, ANSWER)
    assert base.fallback_reason is None  # the base criterion never scores that context


def test_the_leave_one_in_contexts_count_against_the_search_time_budget():
    import time

    from ifc_core import SearchBudget

    def slow(context, output):  # only the launch document alone is slow: a leave-one-in context, never the walk's
        if "Heron" in context and "Zelbrook" not in context:
            time.sleep(0.3)
        return -0.1

    # the query's label (internal) is the floor: the walk ends at the internal candidate, whose
    # test scores the withheld launch document alone
    prop = PermissivePropagator(MockScorer(slow), budget=SearchBudget(seconds=0.2))
    check_fallback(prop.label(query("internal"), DOCS, ANSWER), "took over 0.2 s")
