"""Run-scoped state (issue 16) without a model: the KV-entry store's budget and eviction, the run
prompt order, and the tracker dropping a run's state when it finishes or evicts the run."""

import pytest
import torch

from ifc_core import Chain, FlowTracker, LabelledSource, PermissivePropagator, Policy
from ifc_core._inputs import DecisionInputs
from ifc_core.scoring import MockScorer
from ifc_core.scoring.base import open_run
from ifc_core.scoring.hf_cache import KVEntry, RunCache, common_prefix

CONF = Chain(["public", "internal", "secret"])


def entry(tokens, layers=2):
    n = len(tokens)
    return KVEntry(tuple(tokens), tuple((torch.zeros(1, 1, n, 4), torch.zeros(1, 1, n, 4)) for _ in range(layers)))


def test_common_prefix():
    assert common_prefix((1, 2, 3), (1, 2, 4, 5)) == 2
    assert common_prefix((1, 2), (1, 2, 3)) == 2
    assert common_prefix((), (1,)) == 0 and common_prefix((7,), (8,)) == 0


def test_entries_are_bounded_by_bytes_and_the_oldest_run_goes_first():
    one = entry(range(10)).nbytes  # 10 tokens x 2 layers x (K, V) x 4 floats
    assert one == 10 * 2 * 2 * 4 * 4
    cache = RunCache(3 * one)
    cache.put("old", [entry(range(10))])
    cache.put("mid", [entry(range(100, 110))])
    cache.entries("old")  # used again: now "mid" is the least recently used
    cache.put("new", [entry(range(200, 210)), entry(range(300, 310))])
    stats = cache.stats()
    assert stats["bytes"] <= 3 * one and stats["evicted"] == 1 and stats["peak_bytes"] <= 3 * one
    assert cache.entries("mid") == [] and len(cache.entries("old")) == 1 and len(cache.entries("new")) == 2
    cache.put("huge", [entry(range(40))])  # larger than the whole budget: not kept, nothing else lost
    assert cache.entries("huge") == [] and cache.stats()["runs"] == 2
    cache.forget("new")
    assert cache.entries("new") == [] and cache.stats()["bytes"] == one
    assert RunCache(0).enabled is False
    with pytest.raises(ValueError, match="run_cache_bytes"):
        RunCache(-1)


def test_a_prefix_of_another_entry_is_not_kept_and_the_newest_come_first():
    cache = RunCache(1 << 20, max_entries=3)
    cache.put("r", [entry([1, 2, 3])])
    cache.put("r", [entry([1, 2, 3, 4]), entry([9, 9])])
    assert [e.tokens for e in cache.entries("r")] == [(9, 9), (1, 2, 3, 4)]
    cache.put("r", [entry([5]), entry([6]), entry([7])])
    assert [e.tokens for e in cache.entries("r")] == [(7,), (6,), (5,)]  # at most max_entries, newest kept
    assert cache.stats()["bytes"] == sum(e.nbytes for e in cache.entries("r"))


def test_the_run_order_extends_the_last_prompt():
    prop = PermissivePropagator(MockScorer(lambda c, o: -1.0), lattice=CONF)
    q = LabelledSource("q", "?", CONF.bottom)
    a, b = LabelledSource("a", "A", CONF.label("secret")), LabelledSource("b", "B", CONF.label("public"))
    c, d = LabelledSource("c", "C", CONF.label("internal")), LabelledSource("d", "D", CONF.label("public"))
    first = prop._order(DecisionInputs(q, [a, b], CONF), "run")
    assert [x.id for x in first] == ["b", "a"]  # by rank
    second = prop._order(DecisionInputs(q, [d, a, c, b], CONF), "run")
    assert [x.id for x in second] == ["b", "a", "d", "c"]  # the last order, then the new ones by rank
    assert [x.id for x in prop._order(DecisionInputs(q, [d, a, c, b], CONF), None)] == ["d", "b", "c", "a"]
    prop.forget("run")  # a forgotten run starts afresh: by rank
    assert [x.id for x in prop._order(DecisionInputs(q, [d, a, c, b], CONF), "run")] == ["d", "b", "c", "a"]
    label = PermissivePropagator(MockScorer(lambda c, o: -1.0), lattice=CONF, doc_order="label")
    label._order(DecisionInputs(q, [a, b], CONF), "run")
    assert [x.id for x in label._order(DecisionInputs(q, [d, a, c, b], CONF), "run")] == ["d", "b", "c", "a"]
    with pytest.raises(ValueError, match="doc_order"):
        PermissivePropagator(MockScorer(lambda c, o: -1.0), doc_order="arrival")


def test_the_tracker_passes_its_run_key_and_drops_the_run_when_it_ends():
    scorer = MockScorer(lambda context, output: -1.0)
    prop = PermissivePropagator(scorer, lattice=CONF)
    t = FlowTracker(prop, Policy(CONF), query_label=CONF.bottom, max_runs=1)
    t.add_source("r1", LabelledSource("doc", "The code is 1234.", CONF.label("secret")))
    t.label_output("r1", "The code is 1234.")
    key = prop.run_key("r1")
    assert scorer.keys[-1] == key and key.endswith("/r1")
    t.finish("r1")
    assert scorer.forgotten == [key]
    t.label_output("r2", "Nothing.")
    t.finish("r2")
    t.state("r3")  # r2 is evicted (max_runs=1): forgotten again, and r1 with it
    t.end("r3")
    assert scorer.forgotten[-1] == prop.run_key("r3") and prop.run_key("r2") in scorer.forgotten
    other = PermissivePropagator(scorer, lattice=CONF)
    assert other.run_key("r1") != key  # two propagators sharing a scorer never share a run


def test_a_scorer_without_run_keys_still_works():
    class Legacy:
        def run(self, output_ids):
            return ("run", tuple(output_ids))

    assert open_run(Legacy(), [1, 2], "key") == ("run", (1, 2))
    scorer = MockScorer(lambda c, o: -1.0)
    open_run(scorer, [1], "k")
    open_run(scorer, [1], None)
    assert scorer.keys == ["k", None]
