"""`ifc label` input validation and output files, with the conservative propagator (no model)."""

import json

import pytest

from ifc_core import CaseFormatError, ConservativePropagator
from ifc_core._cases import read_cases
from ifc_core.cli import main

LATTICE = {"type": "chain", "levels": ["public", "internal", "secret"]}


def case(**over):
    c = {"id": "c1", "lattice": LATTICE, "query": {"text": "Q?", "label": "public"},
         "documents": [{"id": "d1", "text": "A.", "label": "internal"},
                       {"id": "d2", "text": "B.", "label": "secret"}],
         "output": "A."}
    c.update(over)
    return json.dumps(c)


def write(tmp_path, *lines):
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_conservative_labels_need_no_model(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["label", str(write(tmp_path, case(), "", case(id="c2"))), "-o", str(out),
                 "--propagator", "conservative"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["c1", "c2"]
    for r in records:
        assert r["label"] == r["conservative_label"] == "secret"
        assert r["mode"] == "estimate" and r["output"] == "A." and r["admitted"] == ["d1", "d2"]
    assert "2 cases" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad, field, words",
    [("{not json", "<line>", "not valid JSON"),
     (case(lattice={"type": "lattice"}), "lattice.type", "unknown lattice type"),
     (case(documents=[{"id": "d1", "text": "A.", "label": "top-secret"}]), "documents[0].label", "top-secret"),
     (case(documents=[{"id": "d1", "text": "A."}]), "documents[0].label", "missing"),
     (case(query={"text": 3, "label": "public"}), "query.text", "string"),
     (case(output=None), "output", "missing"),
     (case(documents=[{"id": "d", "text": "A.", "label": "public"}] * 2), "documents", "twice"),
     (case(colour="red"), "colour", "unknown field")],
)
def test_bad_lines_name_line_and_field(tmp_path, capsys, bad, field, words):
    path = write(tmp_path, case(), bad)
    with pytest.raises(CaseFormatError) as err:
        read_cases(path, need_output=True)
    assert err.value.line == 2 and err.value.field == field and words in str(err.value)
    out = tmp_path / "out.jsonl"
    assert main(["label", str(path), "-o", str(out), "--propagator", "conservative"]) == 2
    assert f"line 2, field '{field}'" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [path]  # nothing half-written


def test_a_failure_mid_run_leaves_no_partial_file(tmp_path, monkeypatch):
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk trouble")
        return original(self, *args, **kwargs)

    original = ConservativePropagator.label
    monkeypatch.setattr(ConservativePropagator, "label", flaky)
    path = write(tmp_path, case(), case(id="c2"), case(id="c3"))
    out = tmp_path / "out.jsonl"
    assert main(["label", str(path), "-o", str(out), "--propagator", "conservative"]) == 2
    assert len(calls) == 2 and not out.exists() and list(tmp_path.iterdir()) == [path]


def test_enforce_mode_does_not_need_an_output(tmp_path):
    assert read_cases(write(tmp_path, case(output=None)), need_output=False)[0].output is None


def test_eval_options_are_checked_before_any_model_loads(tmp_path, capsys):
    assert main(["eval", "--report", str(tmp_path / "r"), "--lambdas", "0.1,abc"]) == 2
    assert "--lambdas: give numbers" in capsys.readouterr().err
    assert main(["eval", "--report", str(tmp_path / "r"), "--propagators", "oracle"]) == 2
    assert "propagators" in capsys.readouterr().err
    assert main(["eval", "--report", str(tmp_path / "r"), "--datasets", "imagenet"]) == 2
    assert "datasets" in capsys.readouterr().err and not (tmp_path / "r").exists()
