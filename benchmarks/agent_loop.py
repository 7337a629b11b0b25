"""Label cost per step of a 6-step agent, with and without incremental scoring (issue 16).

The scripted agent of `agent_case.py` (4 labelled sources, a tool result larger at every step)
runs through a real `FlowTracker` with the permissive propagator on the embedded model. For
every step it prints the step's generation time (Hugging Face `generate` of as many tokens as the
answer has, from the agent's chat prompt, no cache carried between steps), the label decision's
time with incremental scoring (one run key for the run: the HF scorer reuses the KV caches of
the previous step's contexts) and without it (`run_cache_bytes=0`), their ratios to the
generation, the tokens each decision computed, and whether both gave the same label and scores.

Then enforce mode (`FlowTracker.enforce`) against a plain step (the generation alone), on a
variant whose every answer also states a fact of the secret memo, so that nothing is withheld
(the case of the target), and on the agent itself, whose steps withhold parts and regenerate.

One run, idle machine (`flock /work/.heavy.lock .venv/bin/python benchmarks/agent_loop.py`);
every time is the best of `--repeat` runs of the whole agent.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
import agent_case as A  # noqa: E402
from ifc_core import HFScorer, PermissivePropagator, Tolerance, render_tool_calls  # noqa: E402
from ifc_core.scoring.hf_cache import common_prefix  # noqa: E402

TARGET_LABEL, TARGET_ENFORCE = 0.3, 1.5


def generation_s(scorer: HFScorer, chat: list[dict[str, str]], n: int) -> float:
    """One greedy generation of `n` tokens from the chat prompt (prefill included)."""
    ids = torch.tensor([scorer.encode(scorer.render_chat(chat))], device=scorer.device)
    start = time.perf_counter()
    with torch.inference_mode():
        scorer.model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return time.perf_counter() - start


def cached_generation_s(scorer: HFScorer, previous: list[dict[str, str]], chat: list[dict[str, str]], n: int) -> float:
    """The same generation when the agent's model kept the KV cache of its previous step's prompt
    (as serving engines with a prefix cache do): only the new prompt tokens are prefilled."""
    ids, prev = scorer.encode(scorer.render_chat(chat)), scorer.encode(scorer.render_chat(previous))
    shared = min(common_prefix(ids, prev), len(ids) - 1)
    with torch.inference_mode():
        cache = scorer.model(input_ids=torch.tensor([prev[:shared]], device=scorer.device), use_cache=True).past_key_values
        start = time.perf_counter()
        scorer.model.generate(torch.tensor([ids], device=scorer.device), past_key_values=cache, max_new_tokens=n,
                              min_new_tokens=n, do_sample=False)
    return time.perf_counter() - start


CRITERION: str | None = None  # --criterion; None: the engine's default


def permissive(scorer: HFScorer) -> PermissivePropagator:
    return PermissivePropagator(scorer, tolerance=None if CRITERION is None else Tolerance.named(CRITERION))


def out_tokens(scorer: HFScorer, step: A.Step) -> int:
    """Tokens of the step's answer as the labeller sees it (text and rendered tool calls)."""
    return len(scorer.encode(render_tool_calls(step.content, step.calls)))


def estimate_runs(scorer: HFScorer, repeat: int) -> list[list[Any]]:
    """`repeat` runs of the agent in estimate mode on `scorer`: decisions per run."""
    runs = []
    for r in range(repeat):
        prop = permissive(scorer)
        tracker = A.tracker(prop)
        runs.append(A.run_estimate(tracker, f"run-{r}"))
        tracker.finish(f"run-{r}")
    return runs


def best(runs: list[list[Any]]) -> list[float]:
    """Per step, the fastest of the runs."""
    return [min(run[i].seconds for run in runs) for i in range(len(runs[0]))]


def same_scores(a: Any, b: Any) -> float:
    """Largest difference of a candidate's mean NLL between two decisions (inf if they differ in shape)."""
    if [c.label for c in a.candidates] != [c.label for c in b.candidates]:
        return float("inf")
    return max((abs(x.mean_nll - y.mean_nll) for x, y in zip(a.candidates, b.candidates)), default=0.0)


def enforce_runs(scorer: HFScorer, steps: list[A.Step], repeat: int) -> list[dict[str, Any]]:
    """Enforce mode over the scripted steps: each model call pays a real generation of the answer's
    length from the prompt it is given (the first, and every regeneration)."""
    rows: list[dict[str, Any]] = [{} for _ in steps]
    for r in range(repeat):
        prop = permissive(scorer)
        tracker = A.tracker(prop)
        key = f"enforce-{r}"
        A.begin(tracker, key)
        for i, step in enumerate(steps, start=1):
            prompt = A.messages(i, steps)
            chat = A.chat(i, steps)
            n = out_tokens(scorer, step)
            calls: list[float] = []

            def generate(texts: list[str] | None) -> tuple[str, list[Any]]:
                shown = chat if texts is None else [{**m, "content": t} for m, t in zip(chat, texts)]
                calls.append(generation_s(scorer, shown, n))
                return step.content, step.calls

            start = time.perf_counter()
            d, _, _ = tracker.enforce(key, prompt, generate, sink_retry=True)
            total = time.perf_counter() - start
            plain = generation_s(scorer, chat, n)
            row = rows[i - 1]
            if not row or total < row["enforce s"]:
                rows[i - 1] = {"step": i, "plain s": plain, "enforce s": total, "ratio": total / plain,
                               "label s": d.wall_time_s, "model calls": len(calls),
                               "withheld": len(d.withheld), "label": str(d.label)}
            if step.tool in A.TOOLS:
                tracker.add_tool_result(key, step.tool, A.TOOLS[step.tool][1], step.calls[0]["id"])
        tracker.finish(key)
    return rows


def interleaved(scorer: HFScorer, runs: int, budget: int) -> dict[str, Any]:
    """`runs` agent runs at once, their steps interleaved, on a scorer with a `budget`-byte run cache:
    the memory held stays under the budget; evicted runs pay for a full prefill again."""
    small = HFScorer(scorer.model, scorer.tokenizer, model_id=scorer.model_id, run_cache_bytes=budget)
    trackers = [A.tracker(permissive(small)) for _ in range(runs)]
    walks = [A.steps(t, f"run-{i}") for i, t in enumerate(trackers)]
    tokens, high = 0, 0
    for _ in A.STEPS:
        for i, (t, walk) in enumerate(zip(trackers, walks)):
            _, step, prompt = next(walk)
            tokens += t.label_output(f"run-{i}", step.content, step.calls, prompt=prompt).tokens
            high = max(high, small.run_cache.stats()["bytes"])
    stats = small.run_cache.stats()
    return {"runs": runs, "budget MiB": budget >> 20, "peak MiB": stats["peak_bytes"] / 2**20,
            "entries evicted": stats["evicted"], "tokens per decision": tokens / (runs * len(A.STEPS)),
            "bounded": high <= budget}


def table(rows: list[dict[str, Any]]) -> str:
    """Rows of equal keys as an aligned text table."""
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    cols = list(rows[0])
    widths = [max(len(c), *(len(fmt(r[c])) for r in rows)) for c in cols]
    return "\n".join(["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
                     + ["  ".join(fmt(r[c]).ljust(w) for c, w in zip(cols, widths)) for r in rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2: both cores of an idle machine)")
    p.add_argument("--repeat", type=int, default=3, help="runs of the whole agent; each time is the best of them")
    p.add_argument("--interleaved", type=int, default=4, help="runs at once for the memory table (0: skip)")
    p.add_argument("--criterion", help="the tolerance criterion (default: the engine's, alone)")
    args = p.parse_args()
    global CRITERION
    CRITERION = args.criterion
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)
    scorer = HFScorer.load()
    cold = HFScorer(scorer.model, scorer.tokenizer, model_id=scorer.model_id, run_cache_bytes=0)
    print(f"{scorer.model_id} on {scorer.describe()}; run cache budget {scorer.run_cache.max_bytes >> 20} MiB; "
          f"criterion {permissive(scorer).tolerance.name}")
    estimate_runs(scorer, 1)  # warm-up
    scorer.run_cache.clear()
    gen, cached = [], []
    for i, step in enumerate(tqdm(A.STEPS, desc="generations"), start=1):
        n = out_tokens(scorer, step)
        gen.append(min(generation_s(scorer, A.chat(i), n) for _ in range(args.repeat)))
        cached.append(min(cached_generation_s(scorer, A.chat(i - 1), A.chat(i), n) for _ in range(args.repeat))
                      if i > 1 else gen[0])
    inc_runs = estimate_runs(scorer, args.repeat)
    peak = scorer.run_cache.stats()["peak_bytes"]
    cold_runs = estimate_runs(cold, args.repeat)
    inc, base = best(inc_runs), best(cold_runs)
    rows = []
    for i, step in enumerate(A.STEPS):
        a, b = inc_runs[0][i].decision, cold_runs[0][i].decision
        rows.append({"step": i + 1, "prompt tokens": len(scorer.encode(scorer.render_chat(A.chat(i + 1)))),
                     "output tokens": out_tokens(scorer, step), "generate s": gen[i],
                     "gen s (prefix cached)": cached[i], "incremental s": inc[i], "incr/gen": inc[i] / gen[i],
                     "incr/cached gen": inc[i] / cached[i], "full s": base[i],
                     "full/gen": base[i] / gen[i], "tokens incr": a.tokens, "tokens full": b.tokens,
                     "label": str(a.label), "truth": str(step.truth), "same label": a.label == b.label,
                     "max |d mean NLL|": f"{same_scores(a, b):.1e}"})
    print("\nestimate mode, permissive, 4-level chain: label cost per step against the step's generation")
    print(table(rows))
    later = [r["incr/gen"] for r in rows[1:]]
    print(f"\nfrom step 2 on: incremental label/generation {min(later):.2f} to {max(later):.2f} "
          f"(target <= {TARGET_LABEL}: {'met' if max(later) <= TARGET_LABEL else 'NOT met'}); "
          f"without incremental scoring {min(r['full/gen'] for r in rows[1:]):.2f} to "
          f"{max(r['full/gen'] for r in rows[1:]):.2f}; KV kept at peak {peak / 2**20:.0f} MiB")
    heron = [replace(s, content=f"{s.content} Project Heron stays on track.", needs=s.needs + ("legal",))
             for s in A.STEPS]
    for title, steps in (("nothing withheld (every answer also names Project Heron, from the secret memo)", heron),
                         ("the agent itself (parts withheld, answers regenerated)", A.STEPS)):
        rows = enforce_runs(scorer, steps, args.repeat)
        print(f"\nenforce mode against a plain step (its generation alone): {title}")
        print(table(rows))
        clean = [r["ratio"] for r in rows[1:] if r["model calls"] == 1]
        if clean:
            print(f"steps 2-6 with nothing regenerated: enforce/plain {min(clean):.2f} to {max(clean):.2f} "
                  f"(target <= {TARGET_ENFORCE}: {'met' if max(clean) <= TARGET_ENFORCE else 'NOT met'})")
    if args.interleaved:
        print(f"\nmemory: {args.interleaved} runs at once, steps interleaved, under two run-cache budgets "
              f"(one run alone holds {peak / 2**20:.0f} MiB at its last step)")
        print(table([interleaved(scorer, args.interleaved, budget << 20) for budget in (512, 2048)]))
    pairs = [(a.decision, b.decision) for run_a, run_b in zip(inc_runs, cold_runs) for a, b in zip(run_a, run_b)]
    print(f"\nexact: incremental and full scoring gave the same labels in every step of every run: "
          f"{all(a.label == b.label for a, b in pairs)}; largest mean-NLL difference "
          f"{max(same_scores(a, b) for a, b in pairs):.1e}")


if __name__ == "__main__":
    main()
