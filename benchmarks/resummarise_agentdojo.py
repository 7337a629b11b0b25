"""Rebuild an AgentDojo-only `ifc eval` report from its decisions.jsonl with the current metrics
(no model: no decision is recomputed, the cases are replayed again to join them to their truth).

    python benchmarks/resummarise_agentdojo.py RUN_FOLDER OUT_FOLDER "the run's command"

Used for docs/eval/agentdojo after the metric change of f5fe98c (a tool-call case is judged by
its calls' own labels, the label the policy check uses): the run's decisions were made by the
code of 82d7b8f, whose propagators f5fe98c leaves unchanged."""
import json
import re
import sys
from pathlib import Path
from ifc_core import Decision
from ifc_core.eval import EvalConfig, EvalResult, write_report
from ifc_core.eval._agentdojo import agentdojo_cases
from ifc_core.eval._metrics import summarise
from ifc_core.eval._news import INTEGRITY

src, dst, command = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
cases = {c.id: c for c in agentdojo_cases(max_tokens=10**9)}
lab = lambda v: INTEGRITY.label(json.loads(v) if isinstance(v, str) and v.startswith('"') else v)
pairs = []
for line in open(src / "decisions.jsonl"):
    r = json.loads(line)
    d = Decision(r["id"], r["mode"], r["propagator"], lab(r["label"]), lab(r["conservative_label"]),
                 lab(r["query_label"]), r["output"], r["admitted"], r["withheld"], passes=r["passes"],
                 tokens=r["tokens"], wall_time_s=r["wall_time_s"], model_id=r["model_id"],
                 fallback_reason=r["fallback_reason"], notes=r["notes"], settings=r["settings"],
                 spans={k: lab(v) for k, v in r["spans"].items()})
    pairs.append((cases[r["id"]], d))
readme = (src / "README.md").read_text()
cfg = EvalConfig(**json.loads(re.search(r"Configuration: `(.*)`", readme).group(1)))
res = EvalResult(cfg, decisions=pairs, device=re.search(r"Model: \S+ on (.*?), \d+ CPU", readme).group(1),
                 seconds=60 * float(re.search(r"Wall time: ([\d.]+) min", readme).group(1)))
res.skipped = re.findall(r"^- (\S+: context of .*)$", readme, re.M)
for m in re.finditer(r"^\| (\d+) \| (\w+) \| ([\d.]+) \| ([\d.]+) \|$", readme, re.M):
    res.scaling.append({"docs": int(m[1]), "propagator": m[2], "passes": float(m[3]), "seconds": float(m[4])})
props = list(dict.fromkeys(d.propagator for _, d in pairs))
for p in props:
    mine = [(c, d) for c, d in pairs if d.propagator == p]
    for kind in ("benign", "malicious"):
        res.metrics.append(summarise(f"agentdojo/{kind}", p, "estimate", [(c, d) for c, d in mine if c.kind == kind]))
    for suite, kind in sorted({(c.meta["suite"], c.kind) for c, _ in mine}):
        res.metrics.append(summarise(f"agentdojo-{suite}/{kind}", p, "estimate",
                                     [(c, d) for c, d in mine if (c.meta["suite"], c.kind) == (suite, kind)]))
path = write_report(res, dst, command)
text = path.read_text()
note = ("Re-summarised from the run's decisions.jsonl with `benchmarks/resummarise_agentdojo.py` (no decision "
        "recomputed): every figure judges a tool call by its calls' own labels.  \n")
path.write_text(text.replace("Command: ", note + "Command: ", 1))
print(path)
