"""The `ifc` command line: `ifc label CASES.jsonl` and `ifc demo`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from ._errors import IFCError
from ._registry import PROPAGATORS, make_propagator
from ._search import Tolerance

__all__ = ["main"]


def _scorer(args: argparse.Namespace) -> Any:
    """The scorer the options select: a vLLM server (--scorer URL) or a local model (--model)."""
    if args.scorer:
        if args.model:
            raise IFCError("--scorer and --model both given: a served scorer (--scorer URL) or a local model (--model), not both")
        from .scoring import VLLMScorer

        return VLLMScorer.from_url(args.scorer, model=args.scorer_model)
    if args.scorer_model:
        raise IFCError("--scorer-model names the model a vLLM server serves; give --scorer URL with it")
    from .scoring import HFScorer

    return HFScorer.load(args.model)


def _label(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ._cases import read_cases

    cases = read_cases(args.cases, need_output=args.mode == "estimate")  # validate all first
    needs_model = args.propagator != "conservative" or args.mode == "enforce"
    scorer = _scorer(args) if needs_model else None
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


def _eval(args: argparse.Namespace) -> int:
    from .eval import EvalConfig, run_eval, write_report

    sizes = {k: v for k, v in vars(args).items()
             if k in {"synthetic", "news_topics", "agent_user_tasks", "agent_injection_tasks", "enforce", "peer",
                      "seed", "hard"} and v is not None}
    for name in ("datasets", "propagators", "criteria"):
        if getattr(args, name):
            sizes[name] = tuple(x.strip() for x in getattr(args, name).split(",") if x.strip())
    try:
        if args.lambdas:
            sizes["lambdas"] = tuple(float(x) for x in args.lambdas.split(","))
        config = EvalConfig.quick(**sizes) if args.quick else EvalConfig(**sizes)
    except ValueError as exc:
        raise IFCError(f"{exc} (--lambdas takes numbers separated by commas, like 0.1,0.2)"
                       if "float" in str(exc) else str(exc)) from exc
    scorer = _scorer(args) if args.model or args.scorer or args.scorer_model else None
    result = run_eval(config, scorer, log=lambda line: print(line, file=sys.stderr))
    path = write_report(result, args.report, command="ifc " + " ".join(sys.argv[1:] if args.argv is None else args.argv))
    print(f"report written to {path} ({result.seconds / 60:.1f} min)", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.model)
    return 0


def _scorer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="local model folder or .gguf file (default: embedded SmolLM2)")
    p.add_argument("--scorer", metavar="URL",
                   help="score on a vLLM server instead, e.g. http://127.0.0.1:8011/v1 (docs/deployment.md)")
    p.add_argument("--scorer-model", metavar="NAME",
                   help="with --scorer: the served model name (default: the server's only model)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ifc", description="Information-flow labels for LLM outputs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("label", help="label the outputs of a JSONL file of cases")
    p.add_argument("cases", help="JSONL file, one case per line (see docs/cli.md)")
    p.add_argument("-o", "--output", help="write decision records here (JSONL); default: stdout")
    p.add_argument("--mode", choices=["estimate", "enforce"], default="estimate")
    p.add_argument("--propagator", choices=sorted(PROPAGATORS), default="permissive")
    _scorer_options(p)
    p.add_argument("--tolerance", type=float, help="λ: allowed perplexity growth factor minus one")
    p.add_argument("--knn-alpha", type=float, help="knnlm: interpolation weight α of the kNN distribution")
    p.add_argument("--knn-k", type=int, help="knnlm: number of neighbours")
    p.add_argument("--knn-temperature", type=float, help="knnlm: softmax temperature on squared distances")
    p.add_argument("--max-new-tokens", type=int, default=128, help="enforce mode: generation length")
    p.set_defaults(run=_label)
    e = sub.add_parser("eval", help="measure every propagator on the evaluation datasets; write a report")
    e.add_argument("--report", required=True, help="folder for the report (README.md, plots, decisions.jsonl)")
    e.add_argument("--quick", action="store_true", help="a few cases of everything (a smoke run)")
    e.add_argument("--datasets", help="comma-separated: synthetic,news,agentdojo (the default), and the hard groups "
                   "paraphrase,two-hop,long-docs,many-labels,decoy-overlap,model-written (or hard for all of them)")
    e.add_argument("--hard", type=int, help="cases per hard group (default 20)")
    e.add_argument("--criteria", help="comma-separated tolerance criteria measured on the hard groups and swept: "
                   "mean+guard (default), content, copy, content+copy")
    e.add_argument("--propagators", help="comma-separated names (default: all registered)")
    e.add_argument("--synthetic", type=int, help="synthetic cases (default 200)")
    e.add_argument("--news-topics", type=int, help="news topics, two cases each (default 30)")
    e.add_argument("--agent-user-tasks", type=int, help="AgentDojo user tasks per suite (default 4)")
    e.add_argument("--agent-injection-tasks", type=int, help="AgentDojo injection tasks per suite (default 2)")
    e.add_argument("--enforce", type=int, help="synthetic cases also run in enforce mode (default 24)")
    e.add_argument("--peer", type=int,
                   help="synthetic cases for the ContextCite comparison (default 16, 32 ablations each)")
    e.add_argument("--lambdas", help="comma-separated λ values for the calibration sweep")
    e.add_argument("--seed", type=int, help="dataset seed (default 0)")
    _scorer_options(e)
    e.set_defaults(run=_eval)
    d = sub.add_parser("demo", help="a short scenario: conservative and permissive labels side by side")
    d.add_argument("--model", help="local model folder or .gguf file (default: embedded SmolLM2)")
    d.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    args.argv = None if argv is None else list(argv)
    try:
        return int(args.run(args))
    except (IFCError, OSError) as exc:
        print(f"ifc: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
