"""Pure logic of the label search: candidates, lower covers, the tolerance test."""

import math

import numpy as np
import pytest

from ifc_core import Chain, IFCError, Readers, Tags, Tolerance
from ifc_core._search import candidate_labels, lower_covers

CONF = Chain(["public", "internal", "confidential", "secret"])


def test_chain_candidates_are_bottom_and_levels_present():
    cands = candidate_labels(CONF, [CONF.label("secret"), CONF.label("internal"), CONF.label("internal")])
    assert [c.to_json() for c in cands] == ["public", "internal", "secret"]
    assert lower_covers(CONF.label("secret"), cands) == [CONF.label("internal")]
    assert lower_covers(CONF.label("public"), cands) == []


def test_readers_candidates_are_the_join_closure():
    r = Readers(["a", "b", "c"])
    cands = candidate_labels(r, [r.label(["a", "b"]), r.label(["b", "c"])])
    assert {tuple(c.to_json()) for c in cands} == {("a", "b", "c"), ("a", "b"), ("b", "c"), ("b",)}
    covers = lower_covers(r.label(["b"]), cands)
    assert {tuple(c.to_json()) for c in covers} == {("a", "b"), ("b", "c")}


def test_candidate_explosion_is_refused():
    t = Tags([f"t{i}" for i in range(14)])
    with pytest.raises(IFCError, match="max_candidates"):
        candidate_labels(t, [t.label([f"t{i}"]) for i in range(14)], limit=1000)


def test_tolerance_mean_and_per_token():
    tol = Tolerance(lam=0.2, max_token_increase=2.0)
    root = np.array([-0.1, -0.1, -0.1, -0.1])
    assert tol.compare(root, root)[0]
    small = root - math.log1p(0.2) * 0.9
    assert tol.compare(root, small)[0]
    assert not tol.compare(root, root - math.log1p(0.2) * 1.1)[0]
    one_token = root.copy()
    one_token[2] -= 2.5  # the mean rises by only 0.625 nats, one token by 2.5
    ok, mean, worst = Tolerance(lam=10.0, max_token_increase=2.0).compare(root, one_token)
    assert not ok and worst == pytest.approx(2.5)
    assert Tolerance(lam=10.0, max_token_increase=None).compare(root, one_token)[0]
    with pytest.raises(ValueError, match="lam"):
        Tolerance(lam=float("nan"))


# --- search_label with fake scores -------------------------------------------------------------

from ifc_core import LabelledSource  # noqa: E402
from ifc_core._propagators import _Inputs  # noqa: E402
from ifc_core._search import search_label  # noqa: E402

TAGS4 = Tags(["a", "b", "c", "d"])


def _tag_inputs():
    docs = [LabelledSource(t, f"doc {t}", TAGS4.label([t])) for t in "abcd"]
    return _Inputs(LabelledSource("q", "?", TAGS4.bottom), docs, TAGS4), docs


def _fake(passing: dict[frozenset[str], float], fail: float = -5.0):
    """score(sets): two-token outputs; a set in `passing` gets that log-prob per token."""
    calls: list[frozenset[str]] = []

    def score(sets):
        calls.extend(sets)
        return [np.full(2, passing.get(s, fail)) for s in sets]

    return score, calls


def test_search_returns_no_label_with_a_passing_label_below_it():
    # {a,b,c} passes but none of its lower covers do (noise), so the walk stops there; another path
    # ({a,b,d} -> {a,d} -> {a}) reaches {a}, the true minimum. {a,b,c} scores better than {a}, so
    # a lowest-score choice among "minimal" labels that include it would return a non-minimal label.
    inputs, docs = _tag_inputs()
    s = lambda *ids: frozenset(ids)  # noqa: E731
    passing = {s("a", "b", "c", "d"): -1.0, s("a", "b", "c"): -0.9, s("a", "b", "d"): -1.0,
               s("a", "d"): -1.0, s("a"): -1.1}
    score, _ = _fake(passing)
    label, admitted, cands = search_label(inputs, docs, score, Tolerance(lam=0.5), 4096)
    assert label == TAGS4.label(["a"]) and admitted == ["a"]
    passed = [TAGS4.label(c.label) for c in cands if c.similar]
    assert not any(p < label for p in passed)
