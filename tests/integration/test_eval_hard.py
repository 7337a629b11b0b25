"""The hard groups of `ifc eval` on the embedded model: one case of each, two criteria (a smoke run)."""

import pytest

from ifc_core.eval import EvalConfig, run_eval, summarise, write_report
from ifc_core.eval._hard_eval import GROUPS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def hard(scorer):
    config = EvalConfig(datasets=("hard",), propagators=("conservative", "permissive"), hard=1, enforce=0, peer=0,
                        scaling=(), lambdas=(0.5,), criteria=("alone", "mean+guard"), max_new_tokens=24)
    return run_eval(config, scorer)


def test_every_group_has_the_walk_and_the_reference_for_each_criterion(hard):
    got = {(m.dataset, m.propagator) for m in hard.metrics}
    for group in GROUPS:
        if group == "model-written" and not any(c.dataset == group for c, _ in hard.decisions):
            continue  # the model stated no single value in its tries: nothing to keep
        for prop in ("permissive", "reference", "permissive [mean+guard]", "reference [mean+guard]"):
            assert (group, prop) in got
    for m in hard.metrics:
        pairs = [(c, d) for c, d in hard.decisions if d.propagator == m.propagator and c.dataset == m.dataset]
        assert summarise(m.dataset, m.propagator, m.mode, pairs) == m
    ref = {(c.id, d.settings["criterion"]): d for c, d in hard.decisions if d.propagator.startswith("reference")}
    assert ref and all(d.fallback_reason is None for d in ref.values())


def test_the_report_states_the_targets_and_the_sweep_per_criterion(hard, tmp_path):
    text = write_report(hard, tmp_path, command="pytest").read_text()
    for section in ("## Hard groups: the targets of issue 17", "**Two-hop, on its own line:**",
                    "## The λ sweep per criterion", "## paraphrase", "## model-written"):
        assert section in text
    assert {r["group"] for r in hard.sweep} == {"hard", "two-hop"}
