"""The evaluation report: markdown tables, matplotlib plots, the raw decisions, and how it was made."""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import _checks as checks
from .._errors import ConfigurationError
from .._search import Tolerance
from .._tolerance import DEFAULT_CRITERION
from ._agent_report import AGENT_DESCRIPTIONS, agent_targets
from ._hard_report import HARD_DESCRIPTIONS, hard_sections
from ._metrics import Metrics
from ._runner import EvalResult, supported_lambda
from ._summary import summary

__all__ = ["write_report"]

PAPER = ("The method paper reports a label more permissive than its baseline in more than 85% of cases "
         "in an LLM-agent setting, and an exact match of the minimal label in up to ~86% of cases on "
         "large label sets.")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def _num(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _metrics_table(rows: Sequence[Metrics]) -> str:
    return _table(
        ["propagator", "mode", "cases", "improved (of possible)", "exact", "unsafe", "fallback", "retention",
         "passes / decision", "s / decision"],
        [[m.propagator, m.mode, str(m.cases), _pct(m.improved), _pct(m.exact), _pct(m.unsafe), _pct(m.fallback),
          _pct(m.retention), _num(m.passes, 1), _num(m.seconds)] for m in rows])


def _plots(result: EvalResult, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    if _base_sweep(result):
        fig, ax = plt.subplots(figsize=(6, 4))
        for guard, style in ((2.0, "o-"), (None, "s--")):
            rows = [r for r in _base_sweep(result) if r["guard"] == guard]
            if rows:
                ax.plot([r["unsafe"] for r in rows], [r["improved"] for r in rows], style,
                        label=f"per-token guard {guard if guard else 'off'}")
                for r in rows:
                    ax.annotate(f"λ={r['lam']:g}", (r["unsafe"], r["improved"]), fontsize=7,
                                textcoords="offset points", xytext=(4, 2))
        ax.set_xlabel("unsafe share (label below the truth)")
        ax.set_ylabel("improved share (of possible)")
        ax.set_title("Permissive propagator: tolerance λ trade-off")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "lambda_sweep.png", dpi=120)
        plt.close(fig)
        made.append("lambda_sweep.png")
    if result.scaling:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name in dict.fromkeys(r["propagator"] for r in result.scaling):
            rows = [r for r in result.scaling if r["propagator"] == name]
            ax.plot([r["docs"] for r in rows], [r["seconds"] for r in rows], "o-", label=name)
        ax.set_xlabel("documents in the context")
        ax.set_ylabel("seconds per estimate decision")
        ax.set_yscale("log")
        ax.set_title("Time per decision against the number of documents")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "time_vs_documents.png", dpi=120)
        plt.close(fig)
        made.append("time_vs_documents.png")
    bars = [m for m in result.metrics if m.dataset == "synthetic" and m.mode == "estimate"]
    if bars:
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.25
        for i, (field, colour) in enumerate((("improved", "tab:green"), ("exact", "tab:blue"),
                                             ("unsafe", "tab:red"))):
            ax.bar([x + (i - 1) * width for x in range(len(bars))],
                   [getattr(m, field) or 0.0 for m in bars], width, label=field, color=colour)
        ax.set_xticks(range(len(bars)), [m.propagator for m in bars])
        ax.set_ylim(0, 1)
        ax.set_title("Synthetic facts, estimate mode")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "propagators.png", dpi=120)
        plt.close(fig)
        made.append("propagators.png")
    return made


def _peer_section(result: EvalResult) -> str:
    rows = result.peer
    if not rows:
        return ""
    n = len(rows)

    def summary(key: str) -> list[str]:
        if not all(key in r for r in rows):
            return []
        possible = [r for r in rows if r["truth"] < r["conservative"]]
        improved = sum(r[key] < r["conservative"] for r in possible)
        exact = sum(r[key] == r["truth"] for r in rows)
        unsafe = sum(not r["truth"] <= r[key] for r in rows)
        secs = sum(r[f"{key}_s"] for r in rows) / n
        passes = sum(r[f"{key}_passes"] for r in rows) / n
        return [key, _pct(improved / len(possible) if possible else None), _pct(exact / n), _pct(unsafe / n),
                _num(passes, 1), _num(secs)]

    table = _table(["method", "improved (of possible)", "exact", "unsafe", "passes / decision", "s / decision"],
                   [s for s in (summary("permissive"), summary("knnlm"), summary("contextcite")) if s])
    hits = [r["contextcite_top_hit"] for r in rows if r["contextcite_top_hit"] is not None]
    return (f"\n## Peer: ContextCite\n\nContextCite {_version('context-cite')} on {n} of the synthetic cases, "
            f"same model, each document one source, {result.config.peer_ablations} ablations per case. Its label "
            "is the query label joined with the labels of the documents it scores above zero.\n\n"
            f"{table}\n\nContextCite's top-attributed documents were exactly the needed ones in "
            f"{_pct(sum(hits) / len(hits) if hits else None)} of the {len(hits)} cases that need a document.\n")


def check_report_folder(folder: str | Path, field: str = "folder") -> Path:
    """Where a report may go: a folder (new, or one to write into) in a folder that exists."""
    target = Path(checks.path(folder, field)).absolute()
    if target.exists() and not target.is_dir():
        raise ConfigurationError(f"{field}: {str(folder)!r} is a file; give a folder for the report")
    if not target.parent.is_dir():
        raise ConfigurationError(f"{field}: the folder {str(target.parent)!r} does not exist; create it first")
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        raise ConfigurationError(f"{field}: {str(folder)!r} is not writable here; give a folder you may write")
    return target


def write_report(result: EvalResult, folder: str | Path, command: str) -> Path:
    """Write README.md, summary.json, the plots and decisions.jsonl into `folder`; returns the markdown path.

    Everything is written to a temporary folder beside it first and moved into place only when
    all of it is written: a failure leaves `folder` as it was."""
    checks.instance(result, EvalResult, "result", "an EvalResult (from run_eval)")
    checks.text(command, "command", empty=True)
    target = check_report_folder(folder)
    tmp = target.parent / f".{target.name}-{secrets.token_hex(4)}"
    tmp.mkdir()  # as the report folder will be (mkdtemp's would be private to this user)
    try:
        _write(result, tmp, command)
        if not target.exists():
            os.rename(tmp, target)
        else:
            for f in sorted(tmp.iterdir()):
                os.replace(f, target / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / "README.md"


def _write(result: EvalResult, folder: Path, command: str) -> None:
    plots = _plots(result, folder)
    with open(folder / "decisions.jsonl", "w", encoding="utf-8") as f:
        for case, d in result.decisions:
            record = d.to_dict()
            record["dataset"], record["kind"] = case.dataset, case.kind
            record["truth"] = case.truth.to_json() if case.truth is not None else None
            f.write(json.dumps(record) + "\n")
    cfg = result.config
    versions = ", ".join(f"{d} {_version(d)}" for d in ("llm-ifc", "torch", "transformers", "agentdojo",
                                                          "context-cite", "faiss-cpu"))
    parts = [
        "# llm-ifc evaluation report\n",
        f"Command: `{command}`  \nVersions: Python {platform.python_version()}, {versions}  \n"
        f"Model: {_model_line(result)}  \nWall time: {result.seconds / 60:.1f} min  \n"
        f"Configuration: `{json.dumps(result.config_dict())}`\n",
        "## Against the paper\n\n" + PAPER + "\n\n" + _paper_comparison(result) + "\n",
    ]
    datasets = list(dict.fromkeys(m.dataset for m in result.metrics))
    for ds in datasets:
        parts.append(f"## {ds}\n\n{_description(ds)}\n\n"
                     f"{_metrics_table([m for m in result.metrics if m.dataset == ds])}\n")
    parts.append(_COLUMNS)
    parts.append(agent_targets(result.metrics))
    if _base_sweep(result):
        chosen = supported_lambda(result.sweep)
        parts.append("## Calibration: the tolerance λ\n\nThe permissive propagator in estimate mode on the "
                     f"synthetic and news cases, for each λ, with the 2-nat per-token guard and without it "
                     f"(criterion `{DEFAULT_CRITERION}`, the default). "
                     "Every (context, output) pair is scored once for the whole sweep.\n\n" + _table(
                         ["λ", "per-token guard", "improved (of possible)", "unsafe", "exact"],
                         [[f"{r['lam']:g}", "2.0" if r["guard"] else "off", _pct(r["improved"]), _pct(r["unsafe"]),
                           _pct(r["exact"])] for r in _base_sweep(result)])
                     + "\n\nRule (with the 2-nat guard): among the λ with the least unsafe share whose next "
                       "larger λ has it too (a safety margin), the highest exact share, then the most improvement, "
                       f"then the smaller λ. **Supported λ: {_num(chosen, 2) if chosen is not None else 'none'}**; "
                       f"the engine's default is {Tolerance().lam:g}.\n")
    parts.append(hard_sections(result))
    if plots:
        parts.append("## Plots\n\n" + "\n\n".join(f"![{p}]({p})" for p in plots) + "\n")
    if result.scaling:
        parts.append("## Time per decision against the number of documents\n\nOne-fact cases in a 4-level chain, "
                     "documents of one sentence each, the output is the reference answer.\n\n" + _table(
                         ["documents", "propagator", "passes / decision", "s / decision"],
                         [[str(r["docs"]), r["propagator"], _num(r["passes"], 1), _num(r["seconds"])]
                          for r in result.scaling]) + "\n")
    parts.append(_peer_section(result))
    if result.skipped:
        parts.append(f"\n## Skipped\n\n{len(result.skipped)} cases were skipped (never truncated), each with "
                     f"its reason; AgentDojo's context limit is {cfg.agent_max_tokens} tokens:\n\n"
                     + "\n".join(f"- {s}" for s in result.skipped) + "\n")
    (folder / "README.md").write_text("\n".join(parts), encoding="utf-8")
    (folder / "summary.json").write_text(json.dumps(summary(result.metrics), indent=1, allow_nan=False) + "\n",
                                         encoding="utf-8")


def _description(dataset: str) -> str:
    """A dataset's description; AgentDojo's per-suite rows (agentdojo-<suite>/<kind>) refer to the overall one."""
    if dataset.startswith("agentdojo-") and "/" in dataset:
        suite, kind = dataset[len("agentdojo-"):].split("/", 1)
        return f"As agentdojo/{kind}, for the {suite} suite only."
    return _DESCRIPTIONS.get(dataset, "")


def _base_sweep(result: EvalResult) -> list[dict[str, Any]]:
    """The runner's own sweep: the default criterion on synthetic and news, guard on and off."""
    return [r for r in result.sweep if "group" not in r]


def _model_line(result: EvalResult) -> str:
    model = next((d.model_id for _, d in result.decisions if d.model_id), "embedded")
    return f"{model} on {result.device}, {os.cpu_count()} CPU cores ({platform.machine()})"


def _paper_comparison(result: EvalResult) -> str:
    def get(ds: str, prop: str, mode: str = "estimate") -> Metrics | None:
        return next((m for m in result.metrics if (m.dataset, m.propagator, m.mode) == (ds, prop, mode)), None)

    lines = []
    benign = get("agentdojo/benign", "permissive")
    malicious = get("agentdojo/malicious", "permissive")
    if benign and malicious:
        lines.append(f"- Agent setting (AgentDojo, offline replay): the permissive propagator labels "
                     f"{_pct(benign.improved)} of the improvable benign calls more permissively than "
                     f"conservative (paper: >85% more permissive than its baseline), exact {_pct(benign.exact)} and "
                     f"unsafe {_pct(benign.unsafe)} against the canary ground truth, and "
                     f"{_pct(1 - malicious.unsafe if malicious.unsafe is not None else None)} of the injection tasks' "
                     "malicious calls untrusted (the security figure; it must be at or near 100%).")
    synthetic = get("synthetic", "permissive")
    if synthetic:
        lines.append(f"- Synthetic facts: exact minimal label in {_pct(synthetic.exact)} of cases "
                     f"(paper: up to ~86% on large label sets), unsafe {_pct(synthetic.unsafe)}, improved "
                     f"{_pct(synthetic.improved)} of the cases where improvement is possible.")
    return "\n".join(lines)


_DESCRIPTIONS = {
    "synthetic": "Invented facts among distractors; chain, readers and product lattices; answers that need "
                 "one, two, the most restricted or no document. Ground truth: query label ⊔ needed labels. "
                 "Enforce mode runs on the first cases that need a document.",
    "news": "A trusted wire report and an untrusted blog disagree on a fact; the output follows one of them. "
            "Ground truth: the label of the source followed.",
    **AGENT_DESCRIPTIONS,
    **HARD_DESCRIPTIONS,
}

_COLUMNS = """### Columns
- *improved*: decisions labelled strictly below conservative, among the cases where that is correct.
- *exact*: label equal to the ground-truth minimal label (estimate mode).
- *unsafe*: estimate mode, a label below the ground truth; enforce mode, a leak (a withheld
  document's key in the released text). It must be 0 in enforce mode.
- *retention* (enforce mode): the released answer still states the needed facts, among the cases
  where the unrestricted (conservative) answer states them.
- *fallback*: decisions that fell back to the conservative label (an error or an unusable reply).
"""
