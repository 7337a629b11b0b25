"""The `ifc` command line: `ifc label CASES.jsonl`, `ifc eval --report DIR` and `ifc demo`.

Bad input never gives a traceback: every option is checked before any case is read or any model
loads, and an error prints ``ifc: error: <field>: <fix>`` with exit code 2. An output file or a
report folder is written under a temporary name and moved into place only when all of it is
written, so a failure never leaves or overwrites one.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import _checks as checks
from ._errors import CaseFormatError, ConfigurationError, IFCError
from ._registry import PROPAGATORS, make_propagator
from ._tolerance import CRITERIA, Tolerance

__all__ = ["main"]

MAX_NEW_TOKENS = 128  # enforce mode's default generation length


class _UsageError(Exception):
    """What argparse rejected: printed as ``ifc: error: ...`` with a pointer to --help, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message.removeprefix('argument ')}\n(`{self.prog} --help` lists the options)")


def _value(parse: Callable[[str], Any], check: Callable[..., Any], **bounds: Any) -> Callable[[str], Any]:
    """An argparse type: the text parsed by `parse`, then checked as the engine checks it."""
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            value = text  # the check says what was expected instead
        try:
            return check(value, "", **bounds)
        except ConfigurationError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(": ")) from None
    return convert


def _lambdas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(checks.number(float(x), "", low=0) for x in text.split(","))
    except (ValueError, ConfigurationError):
        raise argparse.ArgumentTypeError(f"give numbers >= 0 separated by commas, like 0.1,0.2, not {text!r}") from None
    return values


def _model_options(args: argparse.Namespace) -> None:
    """--model, --scorer and --scorer-model, checked before anything loads."""
    if args.scorer and args.model:
        raise ConfigurationError("--scorer: give a served scorer (--scorer URL) or a local model (--model), not both")
    if args.scorer_model is not None and not args.scorer:
        raise ConfigurationError("--scorer-model: it names the model a vLLM server serves; give --scorer URL with it")
    if args.scorer is not None:
        from .scoring.vllm import check_base_url

        check_base_url(args.scorer, "--scorer")
    if args.model is not None and not os.path.exists(args.model):
        raise ConfigurationError(f"--model: no such file or folder {args.model!r}; give a local model folder "
                                 "or .gguf file (or drop it for the embedded model)")


def _scorer(args: argparse.Namespace) -> Any:
    """The scorer the options select: a vLLM server (--scorer URL) or a local model (--model)."""
    if args.scorer:
        from .scoring import VLLMScorer

        try:
            return VLLMScorer.from_url(args.scorer, model=args.scorer_model)
        except IFCError as exc:
            raise ConfigurationError(f"--scorer: {exc}") from None
    from .scoring import HFScorer

    try:
        return HFScorer.load(args.model)
    except IFCError as exc:
        raise ConfigurationError(f"--model: {exc}") from None


def _label_options(args: argparse.Namespace) -> None:
    """The files and the scorer, checked before any work; options that do nothing with the others
    given are ignored, as `make_propagator` ignores them, but never silently."""
    unused = [f"--knn-{k}" for k in ("alpha", "k", "temperature") if getattr(args, f"knn_{k}") is not None
              and args.propagator != "knnlm"]
    if args.tolerance is not None and args.propagator not in ("permissive", "knnlm"):
        unused.append("--tolerance")
    if args.criterion is not None and args.propagator != "permissive":
        unused.append("--criterion")
    if args.propagator == "conservative" and args.mode == "estimate":
        unused += [o for o, v in (("--model", args.model), ("--scorer", args.scorer)) if v is not None]
    for option in unused:
        print(f"ifc: warning: {option}: the {args.propagator} propagator in {args.mode} mode does not use it; "
              "ignored", file=sys.stderr)
    _model_options(args)
    if not os.path.isfile(args.cases):
        what = "is a folder" if os.path.isdir(args.cases) else "does not exist"
        raise ConfigurationError(f"cases: {args.cases!r} {what}; give the path of a JSONL file of cases")
    if args.output is not None:
        checks.output_file(args.output, "--output")
        if os.path.exists(args.output) and os.path.samefile(args.output, args.cases):
            raise ConfigurationError("--output: that is the cases file itself; give another path")


def _label(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ._cases import read_cases

    _label_options(args)
    try:
        cases = read_cases(args.cases, need_output=args.mode == "estimate")  # validate all first
    except CaseFormatError as exc:
        raise ConfigurationError(f"{args.cases}: {exc}") from None
    if not cases:
        raise ConfigurationError(f"cases: {args.cases!r} holds no cases; write one JSON case per line (docs/cli.md)")
    needs_model = args.propagator != "conservative" or args.mode == "enforce"
    scorer = _scorer(args) if needs_model else None
    max_new_tokens = MAX_NEW_TOKENS if args.max_new_tokens is None else args.max_new_tokens
    if args.mode == "enforce":
        try:
            window = scorer.max_context
        except IFCError as exc:
            raise ConfigurationError(f"--scorer: {exc}") from None
        if max_new_tokens >= window:
            raise ConfigurationError(f"--max-new-tokens: the model window is {window} tokens, prompt included; "
                                     f"give fewer than {window}")
    options: dict[str, object] = {} if args.tolerance is None else {"tolerance": args.tolerance}
    if args.criterion is not None and args.propagator == "permissive":
        lam = Tolerance().lam if args.tolerance is None else args.tolerance
        options["tolerance"] = Tolerance.named(args.criterion, lam)
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
                d = prop.enforce(case.query, case.documents, max_new_tokens=max_new_tokens, id=case.id)
            else:
                assert case.output is not None
                d = prop.label(case.query, case.documents, case.output, id=case.id)
            improved += d.improved
            fallbacks += d.fallback_reason is not None
            out.write(d.to_json() + "\n")
            out.flush()
        if tmp:
            out.close()
            os.chmod(tmp, 0o666 & ~_umask())  # as a file opened for writing would be (mkstemp's is private)
            os.replace(tmp, args.output)
            tmp = None
    finally:
        if tmp:  # nothing half-written: drop the partial file
            out.close()
            os.unlink(tmp)
    print(f"{len(cases)} cases: {improved} labelled below the conservative label, "
          f"{fallbacks} fell back to it", file=sys.stderr)
    return 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_EVAL_LISTS = ("datasets", "propagators", "criteria", "agent_suites")
_EVAL_SIZES = ("synthetic", "news_topics", "agent_user_tasks", "agent_injection_tasks", "enforce", "agent_enforce",
               "peer", "seed", "hard", "lambdas")


def _eval(args: argparse.Namespace) -> int:
    from .eval import EvalConfig, run_eval, write_report
    from .eval._report import check_report_folder

    check_report_folder(args.report, "--report")
    _model_options(args)
    sizes = {k: getattr(args, k) for k in _EVAL_SIZES if getattr(args, k) is not None}
    for name in _EVAL_LISTS:
        if getattr(args, name):
            sizes[name] = tuple(x.strip() for x in getattr(args, name).split(",") if x.strip())
    try:
        config = EvalConfig.quick(**sizes) if args.quick else EvalConfig(**sizes)
    except ConfigurationError as exc:  # name the option, not the EvalConfig field
        field, _, fix = str(exc).partition(": ")
        root = re.split(r"[\[.]", field)[0]
        if root in (*_EVAL_LISTS, *_EVAL_SIZES):
            raise ConfigurationError(f"--{root.replace('_', '-')}{field[len(root):]}: {fix}") from None
        raise
    scorer = _scorer(args) if args.model or args.scorer else None
    result = run_eval(config, scorer, log=lambda line: print(line, file=sys.stderr))
    path = write_report(result, args.report, command="ifc " + " ".join(sys.argv[1:] if args.argv is None else args.argv))
    print(f"report written to {path} ({result.seconds / 60:.1f} min)", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.model is not None and not os.path.exists(args.model):
        raise ConfigurationError(f"--model: no such file or folder {args.model!r}; give a local model folder "
                                 "or .gguf file (or drop it for the embedded model)")
    run_demo(args.model)
    return 0


def _scorer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="local model folder or .gguf file (default: embedded SmolLM2)")
    p.add_argument("--scorer", metavar="URL",
                   help="score on a vLLM server instead, e.g. http://127.0.0.1:8011/v1 (docs/deployment.md)")
    p.add_argument("--scorer-model", metavar="NAME",
                   help="with --scorer: the served model name (default: the server's only model)")


def _parser() -> argparse.ArgumentParser:
    whole = _value(int, checks.whole, low=1)
    count = _value(int, checks.whole, low=0)
    parser = _Parser(prog="ifc", description="Information-flow labels for LLM outputs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("label", help="label the outputs of a JSONL file of cases")
    p.add_argument("cases", help="JSONL file, one case per line (see docs/cli.md)")
    p.add_argument("-o", "--output", help="write decision records here (JSONL); default: stdout")
    p.add_argument("--mode", choices=["estimate", "enforce"], default="estimate")
    p.add_argument("--propagator", choices=sorted(PROPAGATORS), default="permissive")
    _scorer_options(p)
    p.add_argument("--tolerance", type=_value(float, checks.number, low=0),
                   help="λ: allowed perplexity growth factor minus one (>= 0)")
    p.add_argument("--criterion", choices=sorted(CRITERIA),
                   help="permissive: the tolerance criterion (default alone; mean+guard is cheaper, and below "
                        "the truth on restated facts: docs/calibration.md)")
    p.add_argument("--knn-alpha", type=_value(float, checks.number, above=0, below=1),
                   help="knnlm: interpolation weight α of the kNN distribution (between 0 and 1)")
    p.add_argument("--knn-k", type=whole, help="knnlm: number of neighbours (>= 1)")
    p.add_argument("--knn-temperature", type=_value(float, checks.number, above=0),
                   help="knnlm: softmax temperature on squared distances (> 0)")
    p.add_argument("--max-new-tokens", type=whole,
                   help=f"enforce mode: generation length (default {MAX_NEW_TOKENS})")
    p.set_defaults(run=_label)
    e = sub.add_parser("eval", help="measure every propagator on the evaluation datasets; write a report")
    e.add_argument("--report", required=True, help="folder for the report (README.md, plots, decisions.jsonl)")
    e.add_argument("--quick", action="store_true", help="a few cases of everything (a smoke run)")
    e.add_argument("--datasets", help="comma-separated: synthetic,news,agentdojo (the default), and the hard groups "
                   "paraphrase,two-hop,long-docs,many-labels,decoy-overlap,model-written (or hard for all of them)")
    e.add_argument("--hard", type=whole, help="cases per hard group (default 20)")
    e.add_argument("--criteria", help="comma-separated tolerance criteria measured on the hard groups and swept: "
                   "alone (default), mean+guard, content, copy, content+copy")
    e.add_argument("--propagators", help="comma-separated names (default: all registered)")
    e.add_argument("--synthetic", type=whole, help="synthetic cases (default 200)")
    e.add_argument("--news-topics", type=whole, help="news topics, two cases each (default 30)")
    e.add_argument("--agent-user-tasks", type=whole,
                   help="AgentDojo user tasks sampled per suite (default: every user task)")
    e.add_argument("--agent-injection-tasks", type=count,
                   help="AgentDojo injection tasks sampled per user task (default 3)")
    e.add_argument("--agent-suites", help="comma-separated AgentDojo suites: workspace,travel,banking,slack "
                   "(default: all four)")
    e.add_argument("--enforce", type=count, help="synthetic cases also run in enforce mode (default 24; 0: none)")
    e.add_argument("--agent-enforce", type=count,
                   help="AgentDojo cases of each kind also run in enforce mode (default 12; 0: none)")
    e.add_argument("--peer", type=count,
                   help="synthetic cases for the ContextCite comparison (default 16, 32 ablations each; 0: none)")
    e.add_argument("--lambdas", type=_lambdas, help="comma-separated λ values for the calibration sweep")
    e.add_argument("--seed", type=_value(int, checks.whole, low=None), help="dataset seed (default 0)")
    _scorer_options(e)
    e.set_defaults(run=_eval)
    d = sub.add_parser("demo", help="a short scenario: conservative and permissive labels side by side")
    d.add_argument("--model", help="local model folder or .gguf file (default: embedded SmolLM2)")
    d.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        args.argv = None if argv is None else list(argv)
        return int(args.run(args))
    except (_UsageError, IFCError, OSError) as exc:
        print(f"ifc: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
