"""`ifc label` end to end on the embedded model."""

import json

import pytest

from ifc_core.cli import main

from .facts import ONE_DOC, TEXTS

pytestmark = pytest.mark.model

CASE = {
    "id": "capital",
    "lattice": {"type": "chain", "levels": ["public", "internal", "secret"]},
    "query": {"text": ONE_DOC[0], "label": "public"},
    "documents": [{"id": "launch", "text": TEXTS["launch"], "label": "secret"},
                  {"id": "capital", "text": TEXTS["capital"], "label": "internal"}],
    "output": ONE_DOC[1],
}


@pytest.mark.parametrize("propagator, extra", [("permissive", []), ("knnlm", ["--knn-k", "12"])])
@pytest.mark.parametrize("mode", ["estimate", "enforce"])
def test_label_command(tmp_path, capsys, mode, propagator, extra):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps(CASE) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["label", str(cases), "-o", str(out), "--mode", mode, "--max-new-tokens", "24",
                 "--propagator", propagator, *extra]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["id"] == "capital" and record["mode"] == mode and record["propagator"] == propagator
    if propagator == "knnlm":
        assert record["settings"]["k"] == 12
    assert record["label"] == "internal" and record["conservative_label"] == "secret"
    assert record["admitted"] == ["capital"] and record["model_id"] == "SmolLM2-135M-Instruct"
    assert "Zelbrook" in record["output"]
    assert {c["label"] for c in record["candidates"]} >= {"secret", "internal"}
    assert "labelling" in capsys.readouterr().err  # the progress bar
