"""The `ifc` command line: `ifc label CASES.jsonl` and `ifc demo`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from ._errors import IFCError
from ._registry import PROPAGATORS, make_propagator
from ._search import Tolerance

__all__ = ["main"]


def _label(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ._cases import read_cases

    cases = read_cases(args.cases, need_output=args.mode == "estimate")  # validate all first
    needs_model = args.propagator != "conservative" or args.mode == "enforce"
    scorer = None
    if needs_model:
        from ._scorer import HFScorer

        scorer = HFScorer.load(args.model)
    options: dict[str, object] = {} if args.tolerance is None else {"tolerance": Tolerance(lam=args.tolerance)}
    knn = {"alpha": args.knn_alpha, "k": args.knn_k, "temperature": args.knn_temperature}
    options.update({k: v for k, v in knn.items() if v is not None})
    out = sys.stdout
    tmp = None
    if args.output:
        folder = os.path.dirname(os.path.abspath(args.output))
        fd, tmp = tempfile.mkstemp(prefix=".ifc-", suffix=".jsonl", dir=folder)
        out = os.fdopen(fd, "w", encoding="utf-8")
    improved = fallbacks = 0
    try:
        for case in tqdm(cases, desc="labelling", unit="case", file=sys.stderr):
            prop = make_propagator(args.propagator, scorer, lattice=case.lattice, **options)
            if args.mode == "enforce":
                d = prop.enforce(case.query, case.documents, max_new_tokens=args.max_new_tokens, id=case.id)
            else:
                assert case.output is not None
                d = prop.label(case.query, case.documents, case.output, id=case.id)
            improved += d.improved
            fallbacks += d.fallback_reason is not None
            out.write(d.to_json() + "\n")
            out.flush()
        if tmp:
            out.close()
            os.replace(tmp, args.output)
            tmp = None
    finally:
        if tmp:  # nothing half-written: drop the partial file
            out.close()
            os.unlink(tmp)
    print(f"{len(cases)} cases: {improved} labelled below the conservative label, "
          f"{fallbacks} fell back to it", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    run_demo(args.model)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ifc", description="Information-flow labels for LLM outputs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("label", help="label the outputs of a JSONL file of cases")
    p.add_argument("cases", help="JSONL file, one case per line (see docs/cli.md)")
    p.add_argument("-o", "--output", help="write decision records here (JSONL); default: stdout")
    p.add_argument("--mode", choices=["estimate", "enforce"], default="estimate")
    p.add_argument("--propagator", choices=sorted(PROPAGATORS), default="permissive")
    p.add_argument("--model", help="local model folder or .gguf file (default: embedded SmolLM2)")
    p.add_argument("--tolerance", type=float, help="λ: allowed perplexity growth factor minus one")
    p.add_argument("--knn-alpha", type=float, help="knnlm: interpolation weight α of the kNN distribution")
    p.add_argument("--knn-k", type=int, help="knnlm: number of neighbours")
    p.add_argument("--knn-temperature", type=float, help="knnlm: softmax temperature on squared distances")
    p.add_argument("--max-new-tokens", type=int, default=128, help="enforce mode: generation length")
    p.set_defaults(run=_label)
    d = sub.add_parser("demo", help="a short scenario: conservative and permissive labels side by side")
    d.add_argument("--model", help="local model folder or .gguf file (default: embedded SmolLM2)")
    d.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (IFCError, OSError) as exc:
        print(f"ifc: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
