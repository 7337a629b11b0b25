"""The served scorer against the in-process one: same log-probabilities, labels and enforce decisions."""

import json

import numpy as np
import pytest

from ifc_core import ChatPrompt, ConservativePropagator, KNNLMPropagator, LabelledSource, PermissivePropagator
from ifc_core.cli import main

from ..facts import CONF, ONE_DOC, docs
from ..test_permissive import CASES

pytestmark = [pytest.mark.model, pytest.mark.vllm]


def case_inputs(lattice, qlabel, labels, qa):
    return LabelledSource("q", qa[0], lattice.label(qlabel)), docs(lattice, labels), qa[1]


@pytest.mark.parametrize("lattice, qlabel, labels, qa, expected", CASES)
def test_per_token_logprobs_match_hf_within_1e4(scorer, served, lattice, qlabel, labels, qa, expected):
    query, documents, answer = case_inputs(lattice, qlabel, labels, qa)
    local, remote = ChatPrompt(scorer), ChatPrompt(served)
    subsets = [documents, *([d] for d in documents), []]
    contexts = [local.build(query.text, s).ids for s in subsets]
    assert contexts == [remote.build(query.text, s).ids for s in subsets]  # same tokens, through the server
    y = served.encode(answer)
    assert y == scorer.encode(answer) and served.decode(y) == answer
    hf, vllm = scorer.run(y).score(contexts), served.run(y).score(contexts)
    worst = max(float(np.abs(a - b).max()) for a, b in zip(hf, vllm))
    assert worst < 1e-4, worst


def test_greedy_generation_matches_hf(scorer, served):
    query, documents, _ = case_inputs(*CASES[0].values[:4])
    context = ChatPrompt(scorer).build(query.text, documents).ids
    a, b = scorer.generate(context, 32), served.generate(context, 32)
    assert a.ids == b.ids and np.abs(a.logprobs - b.logprobs).max() < 1e-4
    assert b.passes == len(b.ids) + 1 and b.tokens == len(context) + len(b.ids)


@pytest.mark.parametrize("lattice, qlabel, labels, qa, expected", CASES)
def test_permissive_labels_are_identical(scorer, served, lattice, qlabel, labels, qa, expected):
    query, documents, answer = case_inputs(lattice, qlabel, labels, qa)
    hf = PermissivePropagator(scorer).label(query, documents, answer)
    vllm = PermissivePropagator(served).label(query, documents, answer)
    assert vllm.fallback_reason is None and vllm.model_id == "smollm2"
    assert vllm.label == hf.label == lattice.label(expected)
    assert vllm.admitted == hf.admitted
    assert [c.label for c in vllm.candidates] == [c.label for c in hf.candidates]
    assert [c.mean_nll for c in vllm.candidates] == pytest.approx([c.mean_nll for c in hf.candidates], abs=1e-4)


def test_enforce_gives_the_same_admitted_set_and_a_regenerated_answer(scorer, served):
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    documents = docs(CONF, {"salary": "confidential", "capital": "internal", "launch": "secret"})
    hf = PermissivePropagator(scorer).enforce(query, documents, max_new_tokens=24)
    vllm = PermissivePropagator(served).enforce(query, documents, max_new_tokens=24)
    assert vllm.fallback_reason is None and vllm.mode == "enforce"
    assert vllm.admitted == hf.admitted == ["capital"] and vllm.label == hf.label == CONF.label("internal")
    assert vllm.regenerated and hf.regenerated and "Zelbrook" in vllm.output
    assert vllm.output == hf.output


def test_knnlm_on_a_served_scorer_falls_back_and_says_why(served):
    query, documents, answer = case_inputs(*CASES[0].values[:4])
    d = KNNLMPropagator(served).label(query, documents, answer)
    assert "hidden states" in d.fallback_reason and d.label == d.conservative_label


def test_cli_label_with_a_served_scorer(vllm_server, tmp_path):
    query, documents, answer = case_inputs(*CASES[0].values[:4])
    case = {"id": "c", "lattice": CONF.spec(), "query": {"text": query.text, "label": query.label.to_json()},
            "documents": [{"id": d.id, "text": d.text, "label": d.label.to_json()} for d in documents],
            "output": answer}
    (tmp_path / "cases.jsonl").write_text(json.dumps(case) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["label", str(tmp_path / "cases.jsonl"), "-o", str(out), "--scorer", vllm_server.url]) == 0
    record = json.loads(out.read_text())
    assert record["model_id"] == "smollm2" and record["label"] == CASES[0].values[4]
    assert record["label"] != ConservativePropagator().label(query, documents, answer).label.to_json()


def test_cli_eval_with_a_served_scorer(vllm_server, tmp_path):
    assert main(["eval", "--report", str(tmp_path), "--quick", "--datasets", "synthetic", "--propagators",
                 "conservative,permissive", "--synthetic", "4", "--enforce", "1", "--peer", "0",
                 "--scorer", vllm_server.url, "--scorer-model", "smollm2"]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "vLLM server" in text and "## synthetic" in text
