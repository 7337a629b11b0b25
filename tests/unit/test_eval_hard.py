"""The hard groups of `ifc eval` (issue 17): generators, ground truth by construction, targets (no model)."""

import re

import pytest

from ifc_core.eval import EvalConfig, Metrics
from ifc_core.eval._hard import HARD, MANY, hard_cases, ordinal, spelled
from ifc_core.eval._hard_report import targets
from ifc_core.eval._runner import EvalResult


@pytest.mark.parametrize("group", sorted(HARD))
def test_cases_are_seeded_and_their_truth_is_the_join_of_the_needed_labels(group):
    cases = hard_cases(group, 12, seed=3)
    assert [c.output for c in cases] == [c.output for c in hard_cases(group, 12, seed=3)]
    assert [c.output for c in cases] != [c.output for c in hard_cases(group, 12, seed=4)]
    for c in cases:
        by_id = {d.id: d for d in c.documents}
        assert len(by_id) == len(c.documents) and c.needed and all(n in by_id for n in c.needed)
        assert c.truth == c.lattice.join_all([c.query.label, *(by_id[n].label for n in c.needed)])
        # no value of an unneeded document appears in the output
        for doc, key in c.keys.items():
            if doc not in c.needed:
                assert key not in c.output, (c.id, doc, key)
    assert sum(c.can_improve for c in cases) >= len(cases) // 2


def test_paraphrases_restate_the_value_in_other_words():
    cases = hard_cases("paraphrase", 24)
    copied = [c for c in cases if all(c.keys[n] in c.output for n in c.needed)]
    assert len(copied) < len(cases) // 2  # most answers do not copy the value verbatim
    assert spelled(42) == "forty-two" and spelled(13) == "thirteen" and ordinal(22) == "22nd" and ordinal(11) == "11th"


def test_two_hop_needs_the_link_and_the_hop():
    for c in hard_cases("two-hop", 9):
        link, hop = (next(d for d in c.documents if d.id == n) for n in c.needed)
        bridge = c.keys[c.needed[0]]  # the person who links both documents
        assert bridge in link.text and bridge in hop.text and bridge not in c.output
        assert c.keys[c.needed[1]] in c.output


def test_long_docs_and_many_labels_have_their_sizes():
    for c in hard_cases("long-docs", 6):
        assert 8 <= len(c.documents) <= 10 and all(110 <= len(d.text.split()) <= 190 for d in c.documents)
    cases = hard_cases("many-labels", 8)
    assert {c.meta["lattice"] for c in cases} == set(MANY)
    for c in cases:
        assert 8 <= len(c.documents) <= 12 and len({d.label for d in c.documents}) >= 4


def test_the_decoy_names_the_entity_below_the_needed_document():
    for c in hard_cases("decoy-overlap", 9):
        needed = next(d for d in c.documents if d.id == c.needed[0])
        decoys = [d for d in c.documents if d.id != needed.id and re.sub(r"\d", "", d.text) != d.text
                  and set(needed.text.split()[1:3]) & set(d.text.split())]
        assert any(d.label < needed.label for d in decoys), c.id


def test_config_expands_hard_and_checks_criteria():
    cfg = EvalConfig(datasets=("synthetic", "hard"), criteria=("content", "copy"))
    assert cfg.datasets == ("synthetic", *HARD, "model-written")
    with pytest.raises(ValueError, match="criterion"):
        EvalConfig(criteria=("nope",))
    assert EvalConfig().datasets == ("synthetic", "news", "agentdojo")


def _m(ds, prop, cases, unsafe, exact, seconds=1.0):
    return Metrics(ds, prop, "estimate", cases, 1.0, exact, unsafe, 0.0, None, 2.0, seconds)


def test_targets_pool_the_groups_other_than_two_hop():
    result = EvalResult(EvalConfig(), metrics=[
        _m("paraphrase", "permissive", 100, 0.0, 0.9), _m("long-docs", "permissive", 100, 0.02, 0.9, 4.0),
        _m("many-labels", "permissive", 100, 0.0, 0.87, 6.0), _m("two-hop", "permissive", 100, 0.5, 0.1),
        _m("synthetic", "permissive", 100, 0.5, 0.1), _m("paraphrase", "reference", 100, 0.9, 0.0),
        Metrics("long-docs", "permissive [copy]", "estimate", 100, 1.0, 0.9, 0.0, 0.0, None, 0.0, 0.0)])
    goal, memo = targets(result)
    assert memo["met"]["long-docs, many-labels < 5 s"] is None  # scored from the memo: not timed
    assert goal["cases"] == 300 and goal["unsafe"] == pytest.approx(0.02 / 3) and goal["exact"] == pytest.approx(0.89)
    assert goal["met"] == {"unsafe <= 1%": True, "exact >= 88%": True, "no group above 3% unsafe": True,
                           "long-docs, many-labels < 5 s": False}
