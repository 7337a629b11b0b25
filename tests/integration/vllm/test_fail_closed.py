"""The served scorer fails closed against real server processes: killed, hanging, another model."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ifc_core import LabelledSource, PermissivePropagator, VLLMScorer

from ..facts import CONF, ONE_DOC, docs
from .conftest import start_server

pytestmark = [pytest.mark.model, pytest.mark.vllm]

QUERY = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
DOCS = docs(CONF, {"salary": "confidential", "capital": "internal", "launch": "secret"})


def check_conservative(d, *words):
    assert d.fallback_reason is not None and all(w in d.fallback_reason for w in words), d.fallback_reason
    assert d.label == d.conservative_label == CONF.label("secret") and d.withheld == []


@pytest.fixture
def hanging():
    """Starts hanging server processes (hanging_server.py); returns their API roots."""
    def start(upstream=None):
        args = [sys.executable, str(Path(__file__).with_name("hanging_server.py"))] + ([upstream] if upstream else [])
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        return f"http://127.0.0.1:{int(proc.stdout.readline())}/v1"

    procs = []
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_server_that_never_answers_gives_the_conservative_label(hanging):
    url = hanging()
    start = time.perf_counter()
    d = PermissivePropagator(VLLMScorer(url, model="smollm2", timeout=2)).label(QUERY, DOCS, ONE_DOC[1])
    check_conservative(d, "deadline")
    assert time.perf_counter() - start < 10


def test_a_server_that_hangs_mid_decision_past_the_deadline(hanging, vllm_server):
    url = hanging(vllm_server.url[: -len("/v1")])  # tokenizes and lists models, hangs on scoring
    scorer = VLLMScorer(url, model="smollm2", timeout=3)
    start = time.perf_counter()
    d = PermissivePropagator(scorer).label(QUERY, DOCS, ONE_DOC[1])
    check_conservative(d, "deadline", "/v1/completions")
    assert time.perf_counter() - start < 20
    e = PermissivePropagator(scorer).enforce(QUERY, DOCS, max_new_tokens=8)  # the first generation hangs
    check_conservative(e, "deadline")


@pytest.fixture(scope="module")
def other_server(tmp_path_factory):
    """A second real vLLM server, serving the same weights under another name."""
    server = start_server(tmp_path_factory, served_name="other-model")
    yield server
    server.stop()


def test_a_server_serving_another_model(other_server):
    d = PermissivePropagator(VLLMScorer(other_server.url, model="smollm2")).label(QUERY, DOCS, ONE_DOC[1])
    check_conservative(d, "serves ['other-model'], not 'smollm2'")


def test_the_server_killed_mid_decision(other_server, monkeypatch):
    scorer = VLLMScorer(other_server.url, model="other-model")
    real = scorer._call
    scored = []

    def kill_after_the_first_step(path, payload=None, **kw):
        out = real(path, payload, **kw)
        if path == "/completions":
            scored.append(path)
            other_server.kill()  # SIGKILL to the whole server, between two search steps
        return out

    monkeypatch.setattr(scorer, "_call", kill_after_the_first_step)
    d = PermissivePropagator(scorer).label(QUERY, DOCS, ONE_DOC[1])
    check_conservative(d, "vLLM server")
    assert "unreachable" in d.fallback_reason or "connection failed" in d.fallback_reason
    assert scored == ["/completions"] and other_server.process.poll() is not None
    assert d.passes == 1  # the root context was scored; nothing after it
