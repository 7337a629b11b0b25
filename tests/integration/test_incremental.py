"""Incremental scoring within a run (issue 16) on the real embedded model: the next decision of a
run pays only for the tokens added since the last, and every score equals the uncached one."""

import numpy as np
import pytest

from ifc_core import FlowTracker, HFScorer, LabelledSource, PermissivePropagator, Policy
from ifc_core._prompt import ChatPrompt

from .facts import CONF, TEXTS

pytestmark = pytest.mark.model

QUESTION = "What is the capital of Freedonia, and who is its mayor?"
ANSWERS = ["The capital of Freedonia is Zelbrook.", "Its mayor is Ilsa Varn.",
           "The river Quell flows through Osterby.", "Zelbrook is the capital, and Ilsa Varn its mayor."]
STEPS = [  # each step adds parts, as an agent's tool results and answers do
    [("capital", "internal"), ("launch", "secret"), ("recipe", "public")],
    [("mayor", "confidential")],
    [("river", "public"), ("salary", "secret")],
    [("answer-1", "internal")],
]


@pytest.fixture(scope="module")
def uncached(scorer):
    return HFScorer(scorer.model, scorer.tokenizer, model_id=scorer.model_id, run_cache_bytes=0)


def _parts(step):
    out = []
    for added in STEPS[: step + 1]:
        for pid, level in added:
            text = TEXTS.get(pid, ANSWERS[0])
            out.append(LabelledSource(pid, text, CONF.label(level)))
    return out


def test_a_runs_decisions_equal_the_uncached_ones_and_cost_only_the_new_tokens(scorer, uncached):
    cached_prop, plain_prop = PermissivePropagator(scorer), PermissivePropagator(uncached)
    query = LabelledSource("q", QUESTION, CONF.bottom)
    for step, answer in enumerate(ANSWERS):
        a = cached_prop.label(query, _parts(step), answer, id="run")
        b = plain_prop.label(query, _parts(step), answer, id="run")
        assert a.fallback_reason is None and b.fallback_reason is None
        assert a.label == b.label and a.admitted == b.admitted
        assert [c.label for c in a.candidates] == [c.label for c in b.candidates]
        for x, y in zip(a.candidates, b.candidates):
            assert x.documents == y.documents
            assert abs(x.mean_nll - y.mean_nll) < 1e-5 and abs(x.max_token_increase - y.max_token_increase) < 1e-4
        if step:
            assert a.tokens < 0.7 * b.tokens, (step, a.tokens, b.tokens)  # the cost follows the new tokens
    cached_prop.forget("run")
    assert scorer.run_cache.entries(cached_prop.run_key("run")) == []


def test_scores_equal_the_uncached_ones_per_token(scorer, uncached):
    prompt = ChatPrompt(scorer)
    docs = [LabelledSource(k, v, None) for k, v in TEXTS.items()]
    y = scorer.encode(ANSWERS[3])
    for n in range(2, len(docs) + 1):  # a growing context and two restricted ones, in one run
        contexts = [prompt.build(QUESTION, docs[:n]).ids, prompt.build(QUESTION, docs[: n - 1]).ids,
                    prompt.build(QUESTION, docs[:1] + docs[2:n]).ids]
        run = scorer.run(y, key="per-token")
        got = run.score(contexts[:1]) + run.score(contexts[1:])
        want = [uncached.run(y).score([c])[0] for c in contexts]
        for g, w in zip(got, want):
            assert float(np.abs(g - w).max()) < 1e-4  # float32 noise: two uncached passes differ by ~1.4e-5
            assert abs(float(g.mean() - w.mean())) < 1e-5
        if n > 2:
            assert run.reused > 0
    scorer.forget("per-token")


def test_a_restricted_context_reuses_the_longest_cached_prefix_it_shares(scorer):
    prompt = ChatPrompt(scorer)
    a, b, c, new = (LabelledSource(k, TEXTS[k], None) for k in ("capital", "launch", "mayor", "river"))
    y = scorer.encode(ANSWERS[1])
    first = scorer.run(y, key="longest")
    first.score([prompt.build(QUESTION, [a, b, c]).ids])
    first.score([prompt.build(QUESTION, [a, c]).ids])  # the candidate without b
    root, restricted = prompt.build(QUESTION, [a, b, c, new]).ids, prompt.build(QUESTION, [a, c, new]).ids
    second = scorer.run(y, key="longest")
    second.score([restricted])
    # [a, c] is cached whole: only `new`, the question and the output are computed
    shared = prompt.build(QUESTION, [a, c]).spans["mayor"][1]
    assert second.tokens == len(restricted) + len(y) - 1 - shared
    second.score([root])
    assert second.tokens < len(root)  # [a, b, c] served the root
    scorer.forget("longest")


def test_memory_is_bounded_and_the_oldest_run_evicted_first(scorer, uncached):
    small = HFScorer(scorer.model, scorer.tokenizer, model_id=scorer.model_id, run_cache_bytes=8 << 20)
    query = LabelledSource("q", QUESTION, CONF.bottom)
    props = [PermissivePropagator(small), PermissivePropagator(uncached)]
    for run in ("r1", "r2", "r3"):
        for step in range(2):
            a, b = (p.label(query, _parts(step), ANSWERS[step], id=run) for p in props)
            assert a.label == b.label
            assert all(abs(x.mean_nll - y.mean_nll) < 1e-5 for x, y in zip(a.candidates, b.candidates))
            stats = small.run_cache.stats()
            assert stats["bytes"] <= 8 << 20 and stats["peak_bytes"] <= 8 << 20
    assert small.run_cache.stats()["evicted"] > 0
    assert small.run_cache.entries(props[0].run_key("r1")) == []  # the least recently used run went first


def test_the_tracker_drops_a_runs_caches_when_it_finishes(scorer):
    prop = PermissivePropagator(scorer)
    t = FlowTracker(prop, Policy(CONF), query_label=CONF.bottom)
    t.begin("agent", [QUESTION])
    for source in _parts(1):
        t.add_source("agent", source)
    t.label_output("agent", ANSWERS[0])
    assert scorer.run_cache.entries(prop.run_key("agent"))
    t.finish("agent")
    assert scorer.run_cache.entries(prop.run_key("agent")) == []


def test_enforce_mode_in_a_run_equals_the_uncached_run(scorer, uncached):
    query = LabelledSource("q", QUESTION, CONF.bottom)
    a_prop, b_prop = PermissivePropagator(scorer), PermissivePropagator(uncached)
    for step in range(2):
        a = a_prop.enforce(query, _parts(step), max_new_tokens=12, id="enforce")
        b = b_prop.enforce(query, _parts(step), max_new_tokens=12, id="enforce")
        assert (a.label, a.admitted, a.output) == (b.label, b.admitted, b.output)
    a_prop.forget("enforce")


def test_per_argument_labels_in_a_run_equal_the_uncached_ones(scorer, uncached):
    answer = ANSWERS[3]  # "Zelbrook is the capital, and Ilsa Varn its mayor."
    spans = {"capital": (0, answer.index(" is")), "mayor": (answer.index("Ilsa"), answer.index(" its"))}
    query = LabelledSource("q", QUESTION, CONF.bottom)
    a_prop, b_prop = PermissivePropagator(scorer), PermissivePropagator(uncached)
    for step in range(3):
        a = a_prop.label(query, _parts(step), answer, id="spans", spans=spans)
        b = b_prop.label(query, _parts(step), answer, id="spans", spans=spans)
        assert a.fallback_reason is None and b.fallback_reason is None
        assert set(a.spans) == set(spans) and a.spans == b.spans and a.label == b.label
        if step:
            assert a.tokens < b.tokens
    a_prop.forget("spans")
