"""Pruning of the label search (issue 16): ``"exact"`` never changes the decision's label,
``"monotone"`` is an opt-in approximation that scores less. Fake scores, no model."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ifc_core import Chain, LabelledSource, PermissivePropagator, Product, Readers, Tags, Tolerance
from ifc_core._inputs import DecisionInputs
from ifc_core._search import SearchBudget, search_label
from ifc_core._spans import ScoreMemo, span_labels
from ifc_core.scoring import MockScorer

CHAIN = Chain(["public", "internal", "confidential", "secret"])
TAGS = Tags(["a", "b", "c", "d"])
READERS = Readers(["ann", "bob", "cy"])
PRODUCT = Product(conf=Chain(["public", "internal", "secret"]), integrity=Chain(["trusted", "untrusted"]))


def _labels(lattice, rng):
    if lattice is CHAIN:
        return rng.choice(CHAIN.levels)
    if lattice is TAGS:
        return sorted(rng.sample("abcd", rng.randint(0, 3)))
    if lattice is READERS:
        return sorted(rng.sample(["ann", "bob", "cy"], rng.randint(0, 3)))
    return {"conf": rng.choice(["public", "internal", "secret"]), "integrity": rng.choice(["trusted", "untrusted"])}


def _case(lattice, seed):
    rng = random.Random(seed)
    docs = [LabelledSource(f"d{i}", f"doc {i}", lattice.label(_labels(lattice, rng))) for i in range(rng.randint(1, 5))]
    query = LabelledSource("q", "?", lattice.label(_labels(lattice, rng)))
    values: dict = {}  # each induced set passes or fails at random, with a random score, the same every time

    def score(sets):
        for s in sets:
            if s not in values:
                values[s] = np.full(3, -1.0 - rng.random() * 0.1 if rng.random() < 0.6 else -6.0)
        return [values[s] for s in sets]

    return DecisionInputs(query, docs, lattice), docs, score


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([CHAIN, TAGS, READERS, PRODUCT]), st.integers(0, 10**9))
def test_exact_pruning_gives_the_full_walks_label(lattice, seed):
    inputs, docs, score = _case(lattice, seed)
    seen: dict[str, list] = {"exact": [], "none": []}
    results = {}
    for prune in ("none", "exact"):
        def counted(sets, prune=prune):
            seen[prune].extend(sets)
            return score(sets)

        results[prune] = search_label(inputs, docs, counted, Tolerance(lam=0.5), floor=inputs.query_label,
                                      prune=prune)
    full, pruned = results["none"][0], results["exact"][0]
    assert inputs.query_label.join(full) == inputs.query_label.join(pruned)
    assert set(seen["exact"]) <= set(seen["none"])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([CHAIN, TAGS, READERS, PRODUCT]), st.integers(0, 10**9))
def test_exact_pruning_gives_every_spans_full_walk_label(lattice, seed):
    inputs, docs, score = _case(lattice, seed)
    masks = {"first": np.array([True, False, False]), "rest": np.array([False, True, True])}
    got = {prune: span_labels(inputs, docs, ScoreMemo(score), Tolerance(lam=0.5), masks, budget=SearchBudget(),
                              floor=inputs.query_label, prune=prune)
           for prune in ("none", "exact")}
    assert set(got["exact"]) == set(masks) and got["exact"] == got["none"]


def test_nothing_is_scored_when_every_document_is_at_or_below_the_query():
    docs = [LabelledSource("a", "x", CHAIN.label("public")), LabelledSource("b", "y", CHAIN.label("internal"))]
    inputs = DecisionInputs(LabelledSource("q", "?", CHAIN.label("confidential")), docs, CHAIN)
    calls = []
    notes: list[str] = []
    label, admitted, cands = search_label(inputs, docs, lambda sets: calls.extend(sets) or [], Tolerance(),
                                          floor=inputs.query_label, notes=notes)
    assert calls == [] and cands == [] and admitted == ["a", "b"] and label == CHAIN.label("internal")
    assert "nothing scored" in notes[0]


def test_the_chain_walk_stops_at_the_query_label():
    docs = [LabelledSource(lvl, lvl, CHAIN.label(lvl)) for lvl in CHAIN.levels]
    inputs = DecisionInputs(LabelledSource("q", "?", CHAIN.label("internal")), docs, CHAIN)
    scored = {}
    for prune in ("none", "exact"):
        sets: list = []
        label = search_label(inputs, docs, lambda s: sets.extend(s) or [np.full(2, -1.0)] * len(s), Tolerance(),
                             floor=inputs.query_label, prune=prune)[0]
        scored[prune] = (len(sets), inputs.query_label.join(label))
    assert scored["none"] == (4, CHAIN.label("internal"))  # secret, confidential, internal, public
    assert scored["exact"] == (3, CHAIN.label("internal"))  # public cannot lower the label below internal


def test_monotone_pruning_is_opt_in_and_skips_below_a_failure():
    # tags: the root {a,b} passes, {a} (document a alone) fails, {b} passes; ∅ is below {a}, which
    # failed, so "monotone" skips it although it would pass
    docs = [LabelledSource("a", "A", TAGS.label(["a"])), LabelledSource("b", "B", TAGS.label(["b"]))]
    inputs = DecisionInputs(LabelledSource("q", "?", TAGS.bottom), docs, TAGS)

    def score(sets):
        return [np.full(2, -6.0 if s == frozenset({"a"}) else -1.0) for s in sets]

    full = search_label(inputs, docs, score, Tolerance(), floor=TAGS.bottom, prune="none")
    mono = search_label(inputs, docs, score, Tolerance(), floor=TAGS.bottom, prune="monotone")
    assert full[0] == TAGS.bottom  # ∅ passes: reached from {b}
    assert mono[0] == TAGS.label(["b"]) and len(mono[2]) < len(full[2])
    assert PermissivePropagator(MockScorer(lambda c, o: -1.0)).prune == "exact"
    with pytest.raises(ValueError, match="prune"):
        PermissivePropagator(MockScorer(lambda c, o: -1.0), prune="fast")
