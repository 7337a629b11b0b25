"""Side by side with the attribution peers (issue 16): time per decision and exactness.

Three ways to label the same outputs with the same model (embedded SmolLM2, float32):

- **permissive**: our propagator (default settings). In the agent it runs as the tracker runs it,
  one run key for the run, so each step pays only for its new tokens; on the synthetic cases
  every decision is a first one (nothing cached);
- **ContextCite** (PyPI `context-cite`, its default 64 random ablations, batches of 8), run as
  `ifc eval` runs it (`ifc_core.eval._peer`): each part one source, label = the query's label
  joined with those it scores above zero;
- **leave-one-out in the style of AttriBoT**: the output scored with each part left out, all in
  one call to the HF scorer, which reuses the cached prefix before the part left out (AttriBoT's
  cached-prefix speed-up; same model, no proxy); label = the query's label joined with the parts
  whose removal fails our tolerance test (mean and per-token, the same λ).

Cases: the 6 steps of the scripted agent (`agent_case.py`; truth by construction) and synthetic
cases of `ifc eval` (invented facts; truth known). "exact" is label == truth, "unsafe" label
below the truth. One run, idle machine:

    flock /work/.heavy.lock .venv/bin/python benchmarks/peers.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
import agent_case as A  # noqa: E402
from agent_loop import table  # noqa: E402
from ifc_core import HFScorer, PermissivePropagator, Tolerance  # noqa: E402
from ifc_core.eval import EvalCase  # noqa: E402
from ifc_core.eval._peer import contextcite  # noqa: E402
from ifc_core.eval._synthetic import synthetic_cases  # noqa: E402

TARGET = 30.0


def agent_cases(scorer: HFScorer, n: int = len(A.STEPS)) -> tuple[list[EvalCase], list[Any]]:
    """The agent's first `n` steps as cases (the parts in the order our decision showed them: its
    root candidate's), and our decisions of them, made in the run (incremental)."""
    t = A.tracker(PermissivePropagator(scorer))
    cases, decisions = [], []
    for i, step, prompt in A.steps(t, "peers"):
        if i > n:
            break
        query, parts, _ = t._inputs("peers", t.account("peers", prompt))
        d = t.label_output("peers", step.content, step.calls, prompt=prompt)
        decisions.append(d)
        shown = d.candidates[0].documents if d.candidates else [p.id for p in parts]
        parts = sorted(parts, key=lambda p: shown.index(p.id))
        cases.append(EvalCase("agent", f"step-{i}", "agent", A.LATTICE, query, tuple(parts), d.output, step.truth))
    t.finish("peers")
    return cases, decisions


def leave_one_out(scorer: HFScorer, prop: PermissivePropagator, case: EvalCase, tol: Tolerance) -> tuple[Any, float, int]:
    """(label, seconds, model passes) of an AttriBoT-style leave-one-out decision."""
    start = time.perf_counter()
    docs, q = list(case.documents), case.query.text
    run = scorer.run(scorer.encode(case.output))
    contexts = [prop.prompt.build(q, docs).ids] + [prop.prompt.build(q, docs[:i] + docs[i + 1:]).ids
                                                    for i in range(len(docs))]
    scores = run.score(contexts)
    used = [d.label for d, s in zip(docs, scores[1:]) if not tol.compare(scores[0], s)[0]]
    assert case.query.label is not None
    return case.lattice.join_all([case.query.label, *used]), time.perf_counter() - start, run.passes


def compare(scorer: HFScorer, cases: list[EvalCase], ours: list[Any], ablations: int, title: str) -> None:
    """Ours, leave-one-out and ContextCite on `cases`: per-case table, summary and the target."""
    prop = PermissivePropagator(scorer)
    tol = prop.tolerance
    cc = contextcite(scorer, cases, ablations=ablations, batch_size=8, progress=tqdm(total=len(cases), desc=title))
    rows = []
    for case, d, c in zip(cases, ours, cc):
        loo_label, loo_s, loo_passes = leave_one_out(scorer, prop, case, tol)
        rows.append({"case": case.id, "parts": len(case.documents), "truth": str(case.truth),
                     "ours": str(d.label), "ours s": d.wall_time_s, "LOO": str(loo_label), "LOO s": loo_s,
                     "ContextCite": str(c.label), "ContextCite s": c.seconds,
                     "CC/ours": c.seconds / d.wall_time_s, "LOO/ours": loo_s / d.wall_time_s})
        rows[-1]["_labels"] = (d.label, loo_label, c.label, case.truth)
    print(f"\n{title}")
    print(table([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]))
    summary = []
    for name, i, key in (("permissive (ours)", 0, "ours s"), ("leave-one-out (AttriBoT-style)", 1, "LOO s"),
                         (f"ContextCite ({ablations} ablations)", 2, "ContextCite s")):
        exact = sum(r["_labels"][i] == r["_labels"][3] for r in rows)
        unsafe = sum(r["_labels"][i] < r["_labels"][3] for r in rows)
        summary.append({"method": name, "exact": f"{exact}/{len(rows)}", "unsafe": f"{unsafe}/{len(rows)}",
                        "mean s/decision": statistics.mean(r[key] for r in rows),
                        "speed-up of ours": statistics.mean(r[key] for r in rows) / statistics.mean(r["ours s"] for r in rows)})
    print(table(summary))
    ratio = summary[2]["speed-up of ours"]
    ours_exact, cc_exact = (sum(r["_labels"][i] == r["_labels"][3] for r in rows) for i in (0, 2))
    print(f"ours against ContextCite: {ratio:.1f}x faster per decision (target >= {TARGET:g}x: "
          f"{'met' if ratio >= TARGET else 'NOT met'}), exact {ours_exact} vs {cc_exact} "
          f"({'equal or better' if ours_exact >= cc_exact else 'WORSE'})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ablations", type=int, default=64, help="ContextCite's ablations (its default: 64)")
    p.add_argument("--synthetic", type=int, default=8, help="synthetic cases (0: none)")
    p.add_argument("--agent-steps", type=int, default=len(A.STEPS), help=f"steps of the agent compared (default {len(A.STEPS)})")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    scorer = HFScorer.load()
    print(f"{scorer.model_id} on {scorer.describe()}")
    A.run_estimate(A.tracker(PermissivePropagator(scorer)), "warm-up")
    scorer.run_cache.clear()
    cases, ours = agent_cases(scorer, args.agent_steps)
    compare(scorer, cases, ours, args.ablations, "the 6-step agent (ours: incremental, in the run)")
    if args.synthetic:
        synth = synthetic_cases(args.synthetic, seed=16)
        prop = PermissivePropagator(scorer)
        decisions = [prop.label(c.query, c.documents, c.output) for c in synth]
        compare(scorer, synth, decisions, args.ablations, "synthetic cases (ours: cold, every decision a first one)")


if __name__ == "__main__":
    main()
