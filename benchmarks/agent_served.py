"""The 6-step agent on the served scorer (vLLM) against the in-process one (issue 16).

The same scripted agent as `agent_loop.py`, labelled in estimate mode through `VLLMScorer` and
through `HFScorer` (incremental, one run key). For each step: the server's generation of the
answer's length from the agent's chat prompt, with a fresh `cache_salt` (a full prefill, as the
in-process generation) and with the run's own salt (its prefix cache holds the previous step's
prompt, as a served agent's model would have it); the served label decision (one full prefill
per scored context: vLLM does not reuse a prefix for prompt log-probabilities); the in-process
generation and incremental decision. Both engines compute on one core, in float32 (vLLM binds its
engine to core 0; the in-process scorer gets one torch thread), as `served.py`.

    flock /work/.heavy.lock .venv/bin/python benchmarks/agent_served.py
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
import agent_case as A  # noqa: E402
from agent_loop import generation_s, out_tokens, table  # noqa: E402
from ifc_core import HFScorer, PermissivePropagator, VLLMScorer  # noqa: E402
from served import server_arguments, served_scorer  # noqa: E402


def served_generation_s(served: VLLMScorer, chat: list[dict[str, str]], n: int, salt: str) -> float:
    """One generation of `n` tokens on the server (its prefix cache salted per call: nothing reused)."""
    ids = list(served.encode(served.render_chat(chat)))
    payload = {"model": served.model, "prompt": [ids], "max_tokens": n, "min_tokens": n, "temperature": 0,
               "cache_salt": salt}
    start = time.perf_counter()
    served._call("/completions", payload)
    return time.perf_counter() - start


def decisions(scorer: Any, key: str) -> list[Any]:
    """The agent in estimate mode on `scorer`, one run `key`: its decisions."""
    t = A.tracker(PermissivePropagator(scorer))
    out = [x.decision for x in A.run_estimate(t, key)]
    t.finish(key)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    server_arguments(p)
    p.add_argument("--repeat", type=int, default=2, help="runs of the agent; each time is the best of them")
    args = p.parse_args()
    torch.set_num_threads(1)
    hf = HFScorer.load()
    with served_scorer(args) as served:
        print(f"in-process: {hf.model_id} on {hf.describe()}; served: {served.describe()}"
              + ("" if args.server_url else f", engine cpus {args.server_cpus}"))
        decisions(served, "warm-up")
        decisions(hf, "warm-up")
        runs = {"vllm": [decisions(served, f"v{r}") for r in range(args.repeat)],
                "hf": [decisions(hf, f"h{r}") for r in range(args.repeat)]}
        rows = []
        salt = uuid.uuid4().hex  # the run's own: each step's prompt finds the previous one cached
        for i, step in enumerate(A.STEPS, start=1):
            chat, n = A.chat(i), out_tokens(hf, step)
            fresh = min(served_generation_s(served, chat, n, uuid.uuid4().hex) for _ in range(args.repeat))
            cached = served_generation_s(served, chat, n, salt)
            hf_gen = min(generation_s(hf, chat, n) for _ in range(args.repeat))
            v = min(run[i - 1].wall_time_s for run in runs["vllm"])
            h = min(run[i - 1].wall_time_s for run in runs["hf"])
            dv, dh = runs["vllm"][0][i - 1], runs["hf"][0][i - 1]
            rows.append({"step": i, "vLLM gen s": fresh, "vLLM gen s (prefix cached)": cached, "vLLM label s": v,
                         "vLLM label/gen": v / fresh, "vLLM prefills": dv.passes, "vLLM tokens": dv.tokens,
                         "HF gen s": hf_gen, "HF label s": h, "HF label/gen": h / hf_gen, "HF tokens": dh.tokens,
                         "vLLM/HF label": v / h, "same label": dv.label == dh.label})
        print("\nestimate mode, permissive, the 6-step agent: served (vLLM) against in process (HF, incremental)")
        print(table(rows))


if __name__ == "__main__":
    main()
