"""Bad input to `ifc` (issue 12): exit code 2, ``ifc: error: <field>: <fix>`` on stderr, no traceback,
and no output file or report folder created or overwritten. No model: the scorer is a MockScorer."""

import json
import socket

import pytest

from ifc_core import IFCError, MockScorer
from ifc_core import cli
from ifc_core.cli import main

from .test_cli import case

BEFORE = "the previous records\n"


@pytest.fixture
def files(tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(case() + "\n")
    out = tmp_path / "out.jsonl"
    out.write_text(BEFORE)
    (tmp_path / "model").mkdir()
    return tmp_path


def fails(capsys, argv, field, words=""):
    """`ifc argv` exits 2 with ``ifc: error: <field>: ...`` as its first line and no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith(f"ifc: error: {field}:"), err
    assert words in first and "Traceback" not in err
    return first


def untouched(folder, *extra):
    assert (folder / "out.jsonl").read_text() == BEFORE
    assert sorted(p.name for p in folder.iterdir()) == sorted(["cases.jsonl", "out.jsonl", "model", *extra])


LABEL = [
    (["--tolerance", "-1"], "--tolerance", ">= 0"),
    (["--tolerance", "nan"], "--tolerance", "finite"),
    (["--tolerance", "half"], "--tolerance", "not str 'half'"),
    (["--propagator", "knnlm", "--knn-k", "0"], "--knn-k", ">= 1"),
    (["--propagator", "knnlm", "--knn-k", "1.5"], "--knn-k", "whole number"),
    (["--propagator", "knnlm", "--knn-alpha", "1"], "--knn-alpha", "between 0 and 1"),
    (["--propagator", "knnlm", "--knn-alpha", "0"], "--knn-alpha", "between 0 and 1"),
    (["--propagator", "knnlm", "--knn-temperature", "0"], "--knn-temperature", "> 0"),
    (["--mode", "enforce", "--max-new-tokens", "-5"], "--max-new-tokens", ">= 1"),
    (["--max-new-tokens", "-5"], "--max-new-tokens", ">= 1"),  # checked in estimate mode too (it is unused there)
    (["--mode", "bogus"], "--mode", "invalid choice"),
    (["--propagator", "oracle"], "--propagator", "invalid choice"),
    (["--criterion", "strict"], "--criterion", "invalid choice"),
    (["--model", "no-such-model"], "--model", "no such file or folder"),
    (["--scorer", "http://127.0.0.1:8011"], "--scorer", "/v1"),
    (["--scorer", "ftp://127.0.0.1/v1"], "--scorer", "http://"),
    (["--scorer", "http://127.0.0.1:8011/v1", "--model", "MODEL"], "--scorer", "not both"),
    (["--scorer-model", "smollm2"], "--scorer-model", "--scorer URL"),
]


@pytest.mark.parametrize("options, field, words", LABEL)
def test_label_options(files, capsys, options, field, words):
    options = [str(files / "model") if o == "MODEL" else o for o in options]
    fails(capsys, ["label", str(files / "cases.jsonl"), "-o", str(files / "out.jsonl"), *options], field, words)
    untouched(files)


@pytest.mark.parametrize("output, words", [("FOLDER", "is a folder"), ("no/out.jsonl", "does not exist"),
                                           ("cases.jsonl", "the cases file itself")])
def test_label_output_paths(files, capsys, output, words):
    target = files / ("model" if output == "FOLDER" else output)
    fails(capsys, ["label", str(files / "cases.jsonl"), "-o", str(target), "--propagator", "conservative"],
          "--output", words)
    untouched(files)
    assert (files / "cases.jsonl").read_text() == case() + "\n"


def test_label_cases_files(files, capsys):
    conservative = ["-o", str(files / "out.jsonl"), "--propagator", "conservative"]
    fails(capsys, ["label", str(files / "none.jsonl"), *conservative], "cases", "does not exist")
    fails(capsys, ["label", str(files / "model"), *conservative], "cases", "is a folder")
    (files / "empty.jsonl").write_text("\n\n")
    fails(capsys, ["label", str(files / "empty.jsonl"), *conservative], "cases", "holds no cases")
    latin1 = files / "latin1.jsonl"
    latin1.write_bytes(case(output="cafe").replace("cafe", "caf\xe9").encode("latin-1") + b"\n")
    first = fails(capsys, ["label", str(latin1), *conservative], str(latin1), "not UTF-8 text (byte 0xe9")
    assert "line 1" in first
    surrogate = files / "surrogate.jsonl"
    surrogate.write_text(case() + "\n" + case(documents=[{"id": "d1", "text": "A\\ud800.", "label": "public"}])
                         .replace("\\\\ud800", "\\ud800") + "\n")
    first = fails(capsys, ["label", str(surrogate), *conservative], str(surrogate), "lone surrogate")
    assert "line 2, field 'documents[0].text'" in first
    untouched(files, "empty.jsonl", "latin1.jsonl", "surrogate.jsonl")


@pytest.mark.parametrize("options, option", [
    (["--propagator", "conservative", "--knn-k", "4"], "--knn-k"),
    (["--propagator", "conservative", "--tolerance", "0.2"], "--tolerance"),
    (["--propagator", "conservative", "--criterion", "mean+guard"], "--criterion"),
    (["--propagator", "conservative", "--model", "MODEL"], "--model")])
def test_options_that_do_nothing_are_ignored_with_a_warning(files, capsys, options, option):
    options = [str(files / "model") if o == "MODEL" else o for o in options]
    assert main(["label", str(files / "cases.jsonl"), "-o", str(files / "out.jsonl"), *options]) == 0
    assert f"ifc: warning: {option}: the conservative propagator in estimate mode does not use it; ignored" \
        in capsys.readouterr().err


def test_a_utf8_bom_is_fine(files, capsys):
    (files / "cases.jsonl").write_bytes(b"\xef\xbb\xbf" + case().encode() + b"\n")
    assert main(["label", str(files / "cases.jsonl"), "-o", str(files / "out.jsonl"), "--propagator",
                 "conservative"]) == 0
    assert json.loads((files / "out.jsonl").read_text())["id"] == "c1"


def mock(monkeypatch, max_context=4096):
    scorer = MockScorer(lambda context, output: -0.1, reply=lambda context: "A.", max_context=max_context)
    monkeypatch.setattr(cli, "_scorer", lambda args: scorer)
    return scorer


def test_enforce_mode_checks_the_window_before_writing(files, capsys, monkeypatch):
    mock(monkeypatch, max_context=64)
    enforce = ["label", str(files / "cases.jsonl"), "-o", str(files / "out.jsonl"), "--mode", "enforce"]
    fails(capsys, [*enforce, "--max-new-tokens", "100"], "--max-new-tokens", "window is 64 tokens")
    untouched(files)
    assert main([*enforce, "--max-new-tokens", "8"]) == 0
    record = json.loads((files / "out.jsonl").read_text())
    assert record["mode"] == "enforce" and record["output"] == "A."


def test_an_unreachable_scorer_is_an_error_naming_it(files, capsys):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fails(capsys, ["label", str(files / "cases.jsonl"), "-o", str(files / "out.jsonl"), "--scorer",
                   f"http://127.0.0.1:{port}/v1"], "--scorer", "unreachable")
    untouched(files)


EVAL = [
    (["--synthetic=-3"], "--synthetic", ">= 1"),
    (["--synthetic", "0"], "--synthetic", ">= 1"),
    (["--news-topics", "0"], "--news-topics", ">= 1"),
    (["--agent-user-tasks", "0"], "--agent-user-tasks", ">= 1"),
    (["--agent-injection-tasks", "-1"], "--agent-injection-tasks", ">= 0"),
    (["--enforce", "-1"], "--enforce", ">= 0"),
    (["--peer", "-2"], "--peer", ">= 0"),
    (["--hard", "0"], "--hard", ">= 1"),
    (["--seed", "x"], "--seed", "whole number"),
    (["--lambdas=-1"], "--lambdas", ">= 0"),
    (["--lambdas", "0.1,abc"], "--lambdas", "separated by commas"),
    (["--lambdas", ""], "--lambdas", "separated by commas"),
    (["--datasets", "imagenet"], "--datasets", "unknown 'imagenet'"),
    (["--datasets", ","], "--datasets", "at least one"),
    (["--propagators", "oracle"], "--propagators", "unknown 'oracle'"),
    (["--criteria", "nope"], "--criteria", "unknown criterion 'nope'"),
    (["--scorer", "localhost:8011/v1"], "--scorer", "http://"),
    (["--model", "no-such-model"], "--model", "no such file or folder"),
    (["--scorer-model", "smollm2"], "--scorer-model", "--scorer URL"),
    (["--scorer", "http://127.0.0.1:8011/v1", "--model", "."], "--scorer", "not both"),
]


@pytest.mark.parametrize("options, field, words", EVAL)
def test_eval_options(files, capsys, monkeypatch, options, field, words):
    monkeypatch.setattr("ifc_core.eval.run_eval", lambda *a, **k: pytest.fail("the run started"))
    fails(capsys, ["eval", "--report", str(files / "report"), *options], field, words)
    untouched(files)


def test_eval_report_paths_and_failures(files, capsys, monkeypatch):
    fails(capsys, ["eval", "--report", str(files / "out.jsonl")], "--report", "is a file")
    fails(capsys, ["eval", "--report", str(files / "no" / "report")], "--report", "does not exist")

    def broken(*args, **kwargs):
        raise IFCError("the run broke")

    monkeypatch.setattr("ifc_core.eval.run_eval", broken)
    assert main(["eval", "--report", str(files / "report"), "--quick"]) == 2
    assert "the run broke" in capsys.readouterr().err
    untouched(files)


def test_no_command_and_demo(files, capsys):
    fails(capsys, [], "the following arguments are required", "command")
    fails(capsys, ["demo", "--model", str(files / "none")], "--model", "no such file or folder")


@pytest.mark.parametrize("options, criterion, lam", [
    ([], "alone", 0.5), (["--tolerance", "0.2"], "alone", 0.2),
    (["--criterion", "mean+guard"], "mean+guard", 0.5), (["--criterion", "copy", "--tolerance", "1"], "copy", 1.0)])
def test_the_criterion_and_lambda_reach_the_record(files, monkeypatch, options, criterion, lam):
    mock(monkeypatch)
    assert main(["label", str(files / "cases.jsonl"), "-o", str(files / "out.jsonl"), *options]) == 0
    settings = json.loads((files / "out.jsonl").read_text())["settings"]
    assert (settings["criterion"], settings["lam"]) == (criterion, lam)
