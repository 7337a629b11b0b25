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
