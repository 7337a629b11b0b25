"""VLLMScorer's reading of responses, on canned HTTP answers (the real server: tests/integration/vllm).

Every malformed answer is a ScoringError, so the decision falls back to the conservative label.
"""

import json
import socket

import httpx
import numpy as np
import pytest

from ifc_core import PermissivePropagator, ScoringError, VLLMScorer

from .mock_cases import ANSWER, CONF, docs, query

CARD = {"object": "list", "data": [{"id": "smollm2", "max_model_len": 256}]}
DOCS = docs({"capital": "internal", "launch": "secret"})


def completion(prompts, value=-0.5, model="smollm2", drop=None, length=None, missing=False, count=None):
    choices = []
    for i, p in enumerate(prompts):
        per = [None] + [{str(t): {"logprob": value, "rank": 1}} for t in p[1:]]
        if missing:
            per[-1] = {"999999": {"logprob": -1.0}}
        if length is not None:
            per = per[:length]
        choices.append({"index": i, "text": "", "prompt_logprobs": per, "finish_reason": "length"})
    return {"model": model, "choices": choices[:count] if count is not None else choices}


def reply(status, data):
    return httpx.Response(status, content=json.dumps(data).encode())  # json.dumps writes NaN as vLLM may


def scorer(on_completion=None, status=200, card=CARD, **kw):
    """A VLLMScorer on canned answers; its tokenizer: words split on single spaces."""
    words: dict[str, int] = {}

    def handler(request):
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if path == "/v1/models":
            return reply(200, card)
        if path == "/tokenize":
            text = body.get("prompt")
            if text is None:  # the chat template
                text = "".join(f"<{m['role']}> {m['content']} " for m in body["messages"]) + "<assistant>"
            ids = [words.setdefault(w, len(words) + 10) for w in text.split(" ")]
            return reply(200, {"tokens": ids, "count": len(ids), "max_model_len": 64})
        if path == "/detokenize":
            by_id = {i: w for w, i in words.items()}
            return reply(200, {"prompt": " ".join(by_id[i] for i in body["tokens"])})
        if path == "/v1/completions":
            return reply(status, on_completion(body["prompt"]))
        return reply(404, {"error": {"message": f"no route {path}"}})

    return VLLMScorer("http://vllm.test/v1", model="smollm2", transport=httpx.MockTransport(handler), **kw)


def test_scores_are_read_at_the_output_positions():
    s = scorer(lambda prompts: completion(prompts, value=-0.25))
    assert s.max_context == 255 and s.encode("a b a") == (10, 11, 10) and s.decode((11, 10)) == "b a"
    run = s.run((1, 2, 3))
    got = run.score([(7, 8), (9,)])
    assert [list(g) for g in got] == [[-0.25] * 3, [-0.25] * 3] and run.passes == 2 and run.tokens == 9


@pytest.mark.parametrize("answer, words", [
    (dict(value=float("nan")), "non-finite"),
    (dict(value=-9999.0), "clamped"),
    (dict(missing=True), "missing"),
    (dict(length=3), "wrong length"),
    (dict(count=1), "results for 2 prompts"),
    (dict(model="other"), "not 'smollm2'"),
])
def test_malformed_answers_are_scoring_errors(answer, words):
    s = scorer(lambda prompts: completion(prompts, **answer))
    with pytest.raises(ScoringError, match=words):
        s.run((1, 2, 3)).score([(7, 8), (9,)])


def test_http_errors_and_a_server_of_another_model():
    s = scorer(lambda prompts: {"error": {"message": "boom", "code": 500}}, status=500)
    with pytest.raises(ScoringError, match="HTTP 500: boom"):
        s.run((1, 2)).score([(7,)])
    other = scorer(lambda p: completion(p), card={"data": [{"id": "llama", "max_model_len": 64}]})
    with pytest.raises(ScoringError, match=r"serves \['llama'\], not 'smollm2'"):
        other.encode("a")


def test_a_decision_on_a_broken_answer_falls_back():
    s = scorer(lambda prompts: completion(prompts, value=float("nan")))
    d = PermissivePropagator(s).label(query(), DOCS, ANSWER)
    assert "non-finite" in d.fallback_reason and d.label == d.conservative_label == CONF.label("secret")


def test_connection_refused_is_a_conservative_decision():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = VLLMScorer(f"http://127.0.0.1:{port}/v1", model="smollm2", timeout=5)
    d = PermissivePropagator(s).label(query(), DOCS, ANSWER)
    assert "unreachable" in d.fallback_reason and d.label == CONF.label("secret")


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="/v1"):
        VLLMScorer("http://127.0.0.1:8000", model="m")
    with pytest.raises(ValueError, match="timeout"):
        VLLMScorer("http://127.0.0.1:8000/v1", model="m", timeout=0)


def test_generation_drops_the_stop_token():
    def answer(prompts):
        return {"model": "smollm2", "choices": [{"index": 0, "token_ids": [5, 6, 2], "finish_reason": "stop",
                                                 "stop_reason": None,
                                                 "logprobs": {"token_logprobs": [-0.1, -0.2, -0.3]}}]}

    g = scorer(answer).generate((1, 2, 3), 8)
    assert g.ids == (5, 6) and np.allclose(g.logprobs, [-0.1, -0.2])


def test_api_key_goes_in_every_request():
    seen = []

    def handler(request):
        seen.append(request.headers.get("authorization"))
        return reply(200, CARD)

    s = VLLMScorer("http://vllm.test/v1", model="smollm2", api_key="s3cret", transport=httpx.MockTransport(handler))
    assert s.max_context == 255 and seen == ["Bearer s3cret"]


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def test_from_url_takes_the_only_served_model():
    def handler(request):
        return reply(200, {"data": [{"id": "only-one", "max_model_len": 99}]})

    s = VLLMScorer.from_url("http://vllm.test/v1", transport=httpx.MockTransport(handler))
    assert s.model == s.model_id == "only-one" and s.max_context == 98


def test_cli_scorer_options(tmp_path, capsys):
    from ifc_core.cli import main

    case = {"id": "c", "lattice": CONF.spec(), "query": {"text": "Q?", "label": "public"},
            "documents": [{"id": d.id, "text": d.text, "label": d.label.to_json()} for d in DOCS], "output": ANSWER}
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps(case) + "\n")
    url = closed_port_url()
    assert main(["label", str(cases), "--scorer", url, "--model", "x"]) == 2
    assert main(["label", str(cases), "--scorer-model", "smollm2"]) == 2
    assert main(["label", str(cases), "--scorer", url]) == 2  # asks the server for its model first
    err = capsys.readouterr().err
    assert "not both" in err and "--scorer URL" in err and "unreachable" in err and "Traceback" not in err
    out = tmp_path / "out.jsonl"
    assert main(["label", str(cases), "-o", str(out), "--scorer", url, "--scorer-model", "smollm2"]) == 0
    record = json.loads(out.read_text())
    assert "unreachable" in record["fallback_reason"] and record["label"] == record["conservative_label"] == "secret"
