"""The served scorer (vLLM) against the in-process one (HFScorer): label cost and throughput.

1. Label cost, same cases: for N documents of ~200 tokens in a 4-level chain, a 50-token output is
   generated once; one estimate-mode permissive decision on those exact ids is timed through
   HFScorer and through VLLMScorer, each against its own backend's generation of 50 tokens.
2. Throughput: N decisions (N = 1, 4, 16; 5-document cases) at once through one server, against
   the same N decisions one after another on the in-process scorer.

Compute budget on a CPU: the server's engine gets one core (vLLM binds it to core 0) and the
in-process scorer one torch thread, so both compute on one core; the other core runs the server's
HTTP front end and this client. Both in float32. Ratios are printed; run on an idle machine
(`flock /work/.heavy.lock make bench`). On a GPU: benchmarks/gpu.sh.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from ifc_core import HFScorer, PermissivePropagator, VLLMScorer
from ifc_core.scoring.serve import VLLMServer

sys.path.insert(0, str(Path(__file__).parent))
from label_cost import best_of, case  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def hf_generate_s(scorer: HFScorer, ids: list[int], repeat: int) -> tuple[float, list[int]]:
    inp = torch.tensor([ids], device=scorer.device)
    with torch.inference_mode():
        s, out = best_of(repeat, lambda: scorer.model.generate(inp, max_new_tokens=50, min_new_tokens=50,
                                                               do_sample=False))
    return s, out[0, len(ids):].tolist()


def served_generate_s(served: VLLMScorer, ids: list[int], repeat: int) -> float:
    """50 tokens generated on the server, with a fresh `cache_salt` each time: generation requests
    use vLLM's prefix cache, and a repeat would otherwise skip the prefill."""
    def once() -> Any:
        payload = {"model": served.model, "prompt": [ids], "max_tokens": 50, "min_tokens": 50, "temperature": 0,
                   "cache_salt": uuid.uuid4().hex}
        return served._call("/completions", payload)

    return best_of(repeat, once)[0]


def label_cost(hf: HFScorer, served: VLLMScorer, sizes: list[int], repeat: int) -> list[dict]:
    rows = []
    local, remote = PermissivePropagator(hf), PermissivePropagator(served)
    for n in sizes:
        query, docs = case(hf, "chain", n)
        prompt = local.prompt.build(query.text, docs).ids
        hf_gen, output = hf_generate_s(hf, list(prompt), repeat)
        vllm_gen = served_generate_s(served, list(prompt), repeat)
        hf_s, a = best_of(repeat, lambda: local.label(query, docs, output))
        vllm_s, b = best_of(repeat, lambda: remote.label(query, docs, output))
        assert a.fallback_reason is None and b.fallback_reason is None, (a.fallback_reason, b.fallback_reason)
        rows.append({"docs": n, "prompt tokens": len(prompt), "HF gen s": hf_gen, "HF label s": hf_s,
                     "HF label/gen": hf_s / hf_gen, "vLLM gen s": vllm_gen, "vLLM label s": vllm_s,
                     "vLLM label/gen": vllm_s / vllm_gen, "vLLM/HF label": vllm_s / hf_s,
                     "HF passes": a.passes, "vLLM prefills": b.passes, "label": str(a.label),
                     "same label": a.label == b.label})
    return rows


def throughput(hf: HFScorer, served: VLLMScorer, counts: list[int]) -> list[dict]:
    jobs = []
    for i in range(max(counts)):
        query, docs = case(hf, "chain", 5, seed=100 + i)
        jobs.append((query, docs, "The records say the harbour council reported a budget in winter."))
    local, remote = PermissivePropagator(hf), PermissivePropagator(served)
    local.label(*jobs[0])  # warm-up
    rows = []
    for n in counts:
        start = time.perf_counter()
        serial = [local.label(*job) for job in jobs[:n]]
        serial_s = time.perf_counter() - start
        start = time.perf_counter()
        with ThreadPoolExecutor(n) as pool:
            concurrent = list(pool.map(lambda job: remote.label(*job), jobs[:n]))
        served_s = time.perf_counter() - start
        assert all(d.fallback_reason is None for d in concurrent + serial)
        rows.append({"decisions": n, "in-process serial s": serial_s, "served concurrent s": served_s,
                     "in-process /s": n / serial_s, "served /s": n / served_s, "speed-up": serial_s / served_s,
                     "served s/decision (median)": statistics.median(d.wall_time_s for d in concurrent),
                     "same labels": [d.label for d in concurrent] == [d.label for d in serial]})
    return rows


def table(rows: list[dict]) -> str:
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    cols = list(rows[0])
    widths = [max(len(c), *(len(fmt(r[c])) for r in rows)) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(fmt(r[c]).ljust(w) for c, w in zip(cols, widths)) for r in rows]
    return "\n".join(lines)


def server_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the benchmarks that run a vLLM server."""
    p.add_argument("--server-url", help="use this running server (…/v1) instead of starting one")
    p.add_argument("--served-model", default="smollm2")
    p.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm" / "bin" / "python"))
    p.add_argument("--server-cpus", default="0", help="VLLM_CPU_OMP_THREADS_BIND for the started server")


@contextlib.contextmanager
def served_scorer(args: argparse.Namespace) -> Iterator[VLLMScorer]:
    """A VLLMScorer on `--server-url`, or on a server started here (and stopped after)."""
    server = None
    if args.server_url is None:
        print("starting the vLLM server (about 1.5 min on 2 cores)...", file=sys.stderr)
        server = VLLMServer(args.vllm_python, cpus=args.server_cpus, log=Path(tempfile.gettempdir()) / "ifc-bench-vllm.log")
        server.start().wait()
    url = args.server_url or server.url  # type: ignore[union-attr]
    try:
        with VLLMScorer(url, model=args.served_model, timeout=600) as served:
            yield served
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    server_arguments(p)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the in-process scorer")
    p.add_argument("--device", help="in-process scorer device (default: cuda when available)")
    p.add_argument("--dtype", help="in-process scorer dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--docs", default="5,10,20", help="document counts for the label-cost table")
    p.add_argument("--concurrency", default="1,4,16", help="decision counts for the throughput table")
    p.add_argument("--repeat", type=int, default=2, help="keep the fastest of N runs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    hf = HFScorer.load(device=args.device, dtype=args.dtype)
    with served_scorer(args) as served:
        print(f"in-process: {hf.model_id} on {hf.describe()}; served: {served.describe()}"
              + ("" if args.server_url else f", engine cpus {args.server_cpus}"))
        label_cost(hf, served, [2], 1)  # warm-up of both
        print("\nlabel cost (estimate mode, permissive, 4-level chain, 50-token output)")
        print(table(label_cost(hf, served, [int(x) for x in args.docs.split(",")], args.repeat)))
        print("\nthroughput: N decisions at once through one server vs one after another in process")
        print(table(throughput(hf, served, [int(x) for x in args.concurrency.split(",")])))


if __name__ == "__main__":
    main()
