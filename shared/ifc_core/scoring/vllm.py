"""`VLLMScorer`: a vLLM server's OpenAI-compatible API as the scorer (docs/deployment.md).

- Scoring: one ``POST {base_url}/completions`` per search step, every candidate context in it as
  a list of token-id prompts (context + output), with ``max_tokens: 1``, ``prompt_logprobs: 0``,
  ``temperature: 0``; the engine's continuous batching does the batching. The score of output
  token t is ``choices[i].prompt_logprobs[len(context) + t][str(token_id)].logprob``.
- Generation (enforce mode): the same endpoint, greedy, with ``return_token_ids``.
- Tokenization: the server's ``/tokenize`` and ``/detokenize`` (its own tokenizer, so ids always
  match); or a local tokenizer, checked against the server's once at start.

Fails closed: connection refused or broken, no complete answer within `timeout` seconds, an HTTP
error, a server that does not serve `model`, a response with missing, non-finite or clamped
log-probabilities or of the wrong length: each is a `ScoringError`, which the propagators turn
into the conservative label with the reason in the record. Never a partial score.

vLLM skips its prefix cache for requests that ask for prompt log-probabilities, so every candidate
costs a full prefill on the server (the record counts one pass per candidate).

The API is synchronous and thread-safe (one pooled `httpx.Client`); from asyncio code call it
in a worker thread (`asyncio.to_thread`), as the adapters do.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from .. import _checks as checks
from .._errors import ConfigurationError, ModelLoadError, ScoringError
from .base import Generation, Message, ScoringRun, check_window

__all__ = ["VLLMScorer"]

_CLAMPED = -9999.0  # vLLM writes -inf prompt log-probabilities as -9999.0
_PROBE = "Zelbrook, 14th of May: 84,000 kroner. \u00e9t\u00e9 \u2014 <|im_start|>user\n\ttabs"


def check_base_url(value: Any, field: str) -> str:
    """A vLLM server's OpenAI API root: an http(s) URL ending in /v1."""
    checks.url(value, field, example="http://127.0.0.1:8000/v1")
    if not value.rstrip("/").endswith("/v1"):
        raise ConfigurationError(f"{field}: give the server's OpenAI API root ending in /v1, like "
                                 f"http://127.0.0.1:8000/v1, not {value!r}")
    return value


class VLLMScorer:
    """Scores and generates through a vLLM server (``vllm serve`` / its OpenAI API server).

    `base_url` ends in ``/v1`` (``http://host:8000/v1``); `model` is the name the server serves
    (``--served-model-name``) and is checked against ``/v1/models`` before first use and on every
    response. `tokenizer`: None to tokenize on the server, or a local tokenizer (a folder path or a
    loaded Hugging Face tokenizer) that must tokenize exactly as the server does. `timeout`: the
    deadline of one request, in seconds. `api_key`: sent as a bearer token (the server's
    ``--api-key``). `transport`: an httpx transport (tests). Thread-safe; share one instance.
    """

    def __init__(self, base_url: str, *, model: str, tokenizer: str | os.PathLike[str] | Any = None,
                 timeout: float = 60.0, api_key: str | None = None, max_connections: int = 64,
                 transport: httpx.BaseTransport | None = None) -> None:
        check_base_url(base_url, "base_url")
        checks.text(model, "model", what="the served model's name (--served-model-name)")
        checks.number(timeout, "timeout", above=0)
        checks.text(api_key, "api_key", optional=True)
        checks.whole(max_connections, "max_connections")
        checks.instance(transport, httpx.BaseTransport, "transport", "an httpx transport", optional=True)
        if isinstance(tokenizer, (str, os.PathLike)) and not os.path.isdir(checks.path(tokenizer, "tokenizer")):
            raise ConfigurationError(f"tokenizer: {os.fspath(tokenizer)!r} is not a folder; give the served model's "
                                     "local tokenizer folder, or None to tokenize on the server")
        if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike)) and not callable(tokenizer):
            raise checks.wrong_type("tokenizer", "None, a tokenizer folder or a loaded tokenizer", tokenizer)
        self.base_url = base_url.rstrip("/")
        self._root = self.base_url[: -len("/v1")]
        self.model_id = self.model = model
        self.timeout = float(timeout)
        self.hidden_states = None  # a served model exposes no hidden states (kNN-LM needs HFScorer)
        if isinstance(tokenizer, (str, os.PathLike)):
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(str(tokenizer), local_files_only=True)
            except Exception as exc:  # transformers raises many types; one clear error
                raise ModelLoadError(f"tokenizer: could not load a tokenizer from {str(tokenizer)!r}: {exc}") from exc
        self.tokenizer = tokenizer
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout), transport=transport, headers=headers,
                                    limits=httpx.Limits(max_connections=max_connections,
                                                        max_keepalive_connections=max_connections))
        self._info: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, base_url: str, *, model: str | None = None, **kwargs: Any) -> VLLMScorer:
        """A scorer for the server at `base_url`; without `model`, the one model it serves
        (asked now: a ScoringError when it is unreachable or serves several)."""
        checks.text(model, "model", optional=True, what="the served model's name")
        if model is None:
            probe = cls(base_url, model="(any)", **kwargs)  # /models answers for every model
            try:
                served = [c.get("id") for c in probe._call("/models").get("data") or []]
            finally:
                probe.close()
            if len(served) != 1:
                raise ScoringError(f"vLLM server {base_url} serves {served}; name one with model=... (--scorer-model)")
            model = str(served[0])
        return cls(base_url, model=model, **kwargs)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> VLLMScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the server -------------------------------------------------------------------------------

    def _call(self, path: str, payload: dict[str, Any] | None = None, *, api: bool = True) -> Any:
        """One request; its JSON answer, or ScoringError. The whole answer must arrive before the
        deadline (a server that trickles bytes is cut off too)."""
        url = (self.base_url if api else self._root) + path
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream("GET" if payload is None else "POST", url, json=payload) as r:
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if time.monotonic() > deadline:
                        raise ScoringError(f"vLLM server {url}: no complete answer within the {self.timeout:g} s deadline")
                status = r.status_code
        except httpx.TimeoutException:
            raise ScoringError(f"vLLM server {url}: no answer within the {self.timeout:g} s deadline") from None
        except httpx.ConnectError as exc:
            raise ScoringError(f"vLLM server {url} unreachable (is it running?): {exc}") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ScoringError(f"vLLM server {url}: the connection failed: {type(exc).__name__}: {exc}") from None
        try:
            data = json.loads(body)
        except ValueError:
            raise ScoringError(f"vLLM server {url}: HTTP {status}, not JSON: {bytes(body[:200])!r}") from None
        if status >= 400 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            message = error.get("message", error) if isinstance(error, dict) else (error or data)
            raise ScoringError(f"vLLM server {url}: HTTP {status}: {message}")
        if "model" in data and data["model"] != self.model:
            raise ScoringError(f"vLLM server {url} answered as model {data['model']!r}, not {self.model!r}")
        return data

    def _ready(self) -> dict[str, Any]:
        """The server's card for `model`, checked once (and again after a failed check)."""
        with self._lock:
            if self._info is not None:
                return self._info
            cards = self._call("/models").get("data") or []
            card = next((c for c in cards if isinstance(c, dict) and c.get("id") == self.model), None)
            if card is None:
                raise ScoringError(f"vLLM server {self.base_url} serves {[c.get('id') for c in cards]}, "
                                   f"not {self.model!r}; start it with --served-model-name {self.model}")
            if not isinstance(card.get("max_model_len"), int):
                raise ScoringError(f"vLLM server {self.base_url}: no max_model_len for {self.model!r}")
            if self.tokenizer is not None:
                remote = self._tokenize(_PROBE)
                local = tuple(self.tokenizer(_PROBE, add_special_tokens=False)["input_ids"])
                if remote != local:
                    raise ScoringError(f"the local tokenizer does not tokenize as the server's {self.model!r} "
                                       "does; pass the served model's own tokenizer, or tokenizer=None")
            self._info = card
            return card

    def _tokenize(self, text: str) -> tuple[int, ...]:
        data = self._call("/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False}, api=False)
        return tuple(int(t) for t in data["tokens"])

    # the Scorer protocol ----------------------------------------------------------------------

    @property
    def max_context(self) -> int:
        """The server's max_model_len, less the one token each scoring request generates."""
        return int(self._ready()["max_model_len"]) - 1

    def encode(self, text: str) -> tuple[int, ...]:
        """Token ids of `text`, no special tokens added (the server's tokenizer, or the checked local one)."""
        self._ready()
        if self.tokenizer is not None:
            return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._tokenize(text)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens skipped."""
        self._ready()
        if self.tokenizer is not None:
            return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))
        return str(self._call("/detokenize", {"model": self.model, "tokens": [int(t) for t in ids]}, api=False)["prompt"])

    def render_chat(self, messages: Sequence[Message]) -> str:
        """The served model's chat template applied to `messages` (rendered by the server, then
        checked to tokenize back to the same ids), assistant turn opened."""
        self._ready()
        msgs = [dict(m) for m in messages]
        if self.tokenizer is not None:
            return str(self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
        ids = self._call("/tokenize", {"model": self.model, "messages": msgs, "add_generation_prompt": True},
                         api=False)["tokens"]
        text = str(self._call("/detokenize", {"model": self.model, "tokens": ids}, api=False)["prompt"])
        if self._tokenize(text) != tuple(ids):
            raise ScoringError(f"{self.model!r}: the chat template does not render to text that tokenizes back "
                               "to the same ids; pass tokenizer=... (the model's local tokenizer)")
        return text

    def describe(self) -> str:
        return f"vLLM server {self.base_url} (model {self.model})"

    def run(self, output_ids: Sequence[int], *, key: str | None = None) -> ScoringRun:
        """A scoring run for one fixed output; see `ScoringRun.score`. `key` is accepted and
        unused: the server cannot reuse a prefix for prompt log-probabilities."""
        return _VLLMRun(self, output_ids)

    def forget(self, key: str) -> None:
        """Nothing is kept per run."""

    def generate(self, context_ids: Sequence[int], max_new_tokens: int = 128) -> Generation:
        """Greedy decoding on the server from `context_ids`; stops at the model's stop token."""
        check_window(self, context_ids, max_new_tokens)
        data = self._call("/completions", {
            "model": self.model, "prompt": [[int(t) for t in context_ids]], "max_tokens": max_new_tokens,
            "temperature": 0, "logprobs": 0, "return_token_ids": True})
        try:
            choice = data["choices"][0]
            ids = [int(t) for t in choice["token_ids"]]
            logprobs = [float(x) for x in choice["logprobs"]["token_logprobs"]]
            reason, stop = choice["finish_reason"], choice.get("stop_reason")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ScoringError(f"vLLM server: a generation without token ids or log-probabilities ({exc!r})") from None
        if len(logprobs) != len(ids) or not all(math.isfinite(x) for x in logprobs):
            raise ScoringError("vLLM server: the generation's log-probabilities do not match its tokens")
        if ids and reason == "stop" and (stop is None or isinstance(stop, int)):
            ids, logprobs = ids[:-1], logprobs[:-1]  # the stop token itself, which HFScorer never returns
        return Generation(tuple(ids), np.asarray(logprobs, dtype=np.float64), len(ids) + 1,
                          len(context_ids) + len(ids))


class _VLLMRun(ScoringRun):
    """Every context of one `score` call in one request; one server prefill per context."""

    scorer: VLLMScorer

    def _score(self, contexts: list[tuple[int, ...]]) -> list[np.ndarray]:
        y = self.output_ids
        prompts = [list(c) + list(y) for c in contexts]
        data = self.scorer._call("/completions", {
            "model": self.scorer.model, "prompt": prompts, "max_tokens": 1, "temperature": 0, "prompt_logprobs": 0})
        self.passes += len(prompts)
        self.tokens += sum(len(p) for p in prompts)
        choices = data.get("choices")
        if not isinstance(choices, list) or sorted(c.get("index", -1) for c in choices) != list(range(len(prompts))):
            raise ScoringError(f"vLLM server: {len(choices or [])} results for {len(prompts)} prompts")
        scores: list[np.ndarray] = []
        for c, choice in zip(contexts, sorted(choices, key=lambda ch: ch["index"])):
            per_position = choice.get("prompt_logprobs")
            if not isinstance(per_position, list) or len(per_position) != len(c) + len(y):
                raise ScoringError("vLLM server: prompt log-probabilities missing or of the wrong length")
            try:
                values = [float(per_position[len(c) + t][str(tok)]["logprob"]) for t, tok in enumerate(y)]
            except (KeyError, TypeError, ValueError):
                raise ScoringError("vLLM server: a prompt log-probability of an output token is missing") from None
            if any(v <= _CLAMPED for v in values):
                raise ScoringError("non-finite score from the model (vLLM clamped -inf to -9999)")
            scores.append(np.asarray(values, dtype=np.float64))
        return scores
