"""`ifc eval`: every propagator on the same cases, the λ sweep, the scaling run and the peer."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tqdm.auto import tqdm

from .. import _checks as checks
from .._errors import ConfigurationError
from .._record import Decision
from .._registry import PROPAGATORS, make_propagator
from ..scoring import HFScorer, MemoScorer, Scorer
from .._search import CRITERIA, Tolerance
from .._tolerance import DEFAULT_CRITERION
from ._cases import EvalCase
from ._agent_eval import AGENT_PROPAGATORS, agent_enforce_rows, agent_reference_rows, agent_rows
from ._hard_eval import GROUPS, criterion_sweep, hard_data, hard_rows
from ._labelling import label_all
from ._metrics import Metrics, summarise
from ._news import news_cases
from ._synthetic import synthetic_cases

__all__ = ["EvalConfig", "EvalResult", "run_eval"]

DATASETS = ("synthetic", "news", "agentdojo", *GROUPS)  # GROUPS: the hard groups of issue 17 ("hard": all)


@dataclass
class EvalConfig:
    """What `ifc eval` runs. The defaults are the committed default report's run (about 65 min on 2 CPU
    cores; its wall time is in the report)."""

    datasets: tuple[str, ...] = DATASETS[:3]
    propagators: tuple[str, ...] = tuple(PROPAGATORS)
    synthetic: int = 200
    news_topics: int = 30
    agent_user_tasks: int | None = None  # None: every user task of every suite (97)
    agent_injection_tasks: int = 3  # sampled per user task
    agent_max_tokens: int = 2500
    agent_suites: tuple[str, ...] | None = None  # None: every suite
    enforce: int = 24
    agent_enforce: int = 12  # AgentDojo cases of each kind (benign, malicious) also run in enforce mode
    max_new_tokens: int = 40
    lambdas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0)
    scaling: tuple[int, ...] = (2, 5, 10, 20)
    scaling_cases: int = 3
    peer: int = 16
    peer_ablations: int = 32
    seed: int = 0
    hard: int = 20  # cases per hard group
    criteria: tuple[str, ...] = (DEFAULT_CRITERION,)  # tolerance criteria measured on the hard groups and swept

    def __post_init__(self) -> None:
        self.datasets = checks.names(self.datasets, "datasets", "dataset")
        if "hard" in self.datasets:
            self.datasets = tuple(dict.fromkeys(g for d in self.datasets for g in (GROUPS if d == "hard" else (d,))))
        self.criteria = checks.names(self.criteria, "criteria", "criterion")
        for name in self.criteria:
            if name not in CRITERIA:
                raise ConfigurationError(f"criteria: unknown criterion {name!r}; use some of {sorted(CRITERIA)}")
        self.propagators = checks.names(self.propagators, "propagators", "propagator")
        for field, known in (("datasets", DATASETS), ("propagators", tuple(PROPAGATORS))):
            for name in getattr(self, field):
                if name not in known:
                    raise ConfigurationError(f"{field}: unknown {name!r}; use some of {sorted(known)}")
        if self.agent_suites is not None:
            from ._agentdojo import SUITES

            self.agent_suites = checks.names(self.agent_suites, "agent_suites", "suite")
            for name in self.agent_suites:
                if name not in SUITES:
                    raise ConfigurationError(f"agent_suites: unknown suite {name!r}; use some of {list(SUITES)}")
        for field, low in _SIZES.items():
            if not (field == "agent_user_tasks" and getattr(self, field) is None):
                checks.whole(getattr(self, field), field, low=low)
        self.lambdas = _numbers(self.lambdas, "lambdas", low=0, empty=False)
        self.scaling = tuple(int(n) for n in _numbers(self.scaling, "scaling", low=2, whole=True))

    @classmethod
    def quick(cls, **overrides: Any) -> EvalConfig:
        """A few cases of everything: a smoke run of the whole harness (minutes)."""
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigurationError(f"{unknown[0]}: not an EvalConfig field; use some of "
                                     f"{[f.name for f in fields(cls)]}")
        small: dict[str, Any] = dict(synthetic=8, news_topics=2, agent_user_tasks=1, agent_injection_tasks=1,
                                     agent_max_tokens=1200, agent_suites=("banking", "slack"), enforce=2,
                                     agent_enforce=1, max_new_tokens=24, lambdas=(0.2, 1.0),
                                     scaling=(2, 5), scaling_cases=1, peer=2, peer_ablations=8)
        small.update(overrides)
        return cls(**small)


# the smallest value of each count (0: the part can be switched off)
_SIZES = {"synthetic": 1, "news_topics": 1, "agent_user_tasks": 1, "agent_injection_tasks": 0, "agent_max_tokens": 1,
          "enforce": 0, "agent_enforce": 0, "max_new_tokens": 1, "scaling_cases": 1, "peer": 0, "peer_ablations": 1,
          "seed": None, "hard": 1}


def _numbers(values: Any, field: str, *, low: float, empty: bool = True, whole: bool = False) -> tuple[Any, ...]:
    """A list of numbers >= `low` (whole numbers when `whole`), as a tuple."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise checks.wrong_type(field, "a list of numbers", values)
    items = tuple(values)
    if not items and not empty:
        raise ConfigurationError(f"{field}: give at least one value")
    for i, v in enumerate(items):
        if whole:
            checks.whole(v, f"{field}[{i}]", low=int(low))
        else:
            checks.number(v, f"{field}[{i}]", low=low)
    return items


@dataclass
class EvalResult:
    """Everything the report shows, and the raw decisions."""

    config: EvalConfig
    metrics: list[Metrics] = field(default_factory=list)
    decisions: list[tuple[EvalCase, Decision]] = field(default_factory=list)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    scaling: list[dict[str, Any]] = field(default_factory=list)
    peer: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    device: str = ""

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)


def run_eval(config: EvalConfig, scorer: Scorer | None = None,
             log: Callable[[str], None] = lambda _: None) -> EvalResult:
    """Run everything `config` asks for on `scorer` (default: the embedded model)."""
    checks.instance(config, EvalConfig, "config", "an EvalConfig")
    checks.scorer(scorer, optional=True)
    if not callable(log):
        raise checks.wrong_type("log", "a function taking one line of text", log)
    start = time.perf_counter()
    scorer = scorer or HFScorer.embedded()
    result = EvalResult(config, device=scorer.describe())
    data: dict[str, list[EvalCase]] = {}
    if "synthetic" in config.datasets:
        data["synthetic"] = synthetic_cases(config.synthetic, seed=config.seed)
    if "news" in config.datasets:
        data["news"] = news_cases(config.news_topics, seed=config.seed)
    if "agentdojo" in config.datasets:
        from ._agentdojo import agentdojo_cases

        data["agentdojo"] = agentdojo_cases(
            user_tasks=config.agent_user_tasks, injection_tasks=config.agent_injection_tasks, seed=config.seed,
            max_tokens=config.agent_max_tokens, count_tokens=lambda t: len(scorer.encode(t)),
            suites=config.agent_suites, skipped=result.skipped)
    data.update(hard_data([d for d in config.datasets if d in GROUPS], config.hard, config.seed, scorer,
                          config.max_new_tokens, result.skipped))
    log(", ".join(f"{k}: {len(v)} cases" for k, v in data.items()))
    memo = MemoScorer(scorer)  # the λ sweeps re-score the estimate stage's contexts for free
    props = {name: make_propagator(name, memo) for name in config.propagators}
    _estimate_and_enforce(data, props, config, result)
    result.metrics += hard_rows(data, memo, config.criteria, "permissive" in props, result.decisions)
    if "permissive" in props and data.get("agentdojo"):  # the achievable line on the embedded model
        result.metrics += agent_reference_rows(data["agentdojo"], memo, config.max_new_tokens, result.decisions)
    if "permissive" in props:  # the sweep calibrates the permissive propagator's λ
        base = [c for k in ("synthetic", "news") for c in data.get(k, [])]
        result.sweep = _sweep(memo, base, config)
        hard = [c for k in GROUPS if k != "two-hop" for c in data.get(k, [])]
        result.sweep += criterion_sweep({"synthetic+news": base, "hard": hard, "two-hop": data.get("two-hop", [])},
                                        memo, config.criteria, config.lambdas)
    result.scaling = _scaling(scorer, config, [n for n in ("permissive", "knnlm", "introspection") if n in props])
    if "synthetic" in data and config.peer:
        if isinstance(scorer, HFScorer):
            result.peer = _peer(scorer, data["synthetic"], config, result.decisions)
        else:  # ContextCite runs the model itself: it needs the local model, not a served one
            log(f"peer comparison skipped: ContextCite needs an HFScorer, not {type(scorer).__name__}")
    result.seconds = time.perf_counter() - start
    return result


def _estimate_and_enforce(data: dict[str, list[EvalCase]], props: dict[str, Any], config: EvalConfig,
                          result: EvalResult) -> None:
    """Every propagator on every case in estimate mode (on AgentDojo, those of `AGENT_PROPAGATORS`),
    and on the synthetic and AgentDojo subsets in enforce mode."""
    for dataset, cases in data.items():
        for name, prop in props.items():
            if dataset == "agentdojo" and name not in AGENT_PROPAGATORS:
                continue
            pairs = label_all(name, prop, cases, "estimate", config.max_new_tokens, result.decisions)
            if dataset == "agentdojo":  # benign and malicious calls are two questions; and per suite
                result.metrics += agent_rows(cases, pairs, name, "estimate")
            else:
                result.metrics.append(summarise(dataset, name, "estimate", pairs))
    if "synthetic" in data and config.enforce:
        cases = [c for c in data["synthetic"] if c.kind != "none"][: config.enforce]
        enforced = {name: label_all(name, prop, cases, "enforce", config.max_new_tokens, result.decisions)
                    for name, prop in props.items()}
        reference = {c.id: d.output for c, d in enforced.get("conservative", [])}
        for name, pairs in enforced.items():
            result.metrics.append(summarise("synthetic", name, "enforce", pairs, reference or None))
    if data.get("agentdojo") and config.agent_enforce:
        result.metrics += agent_enforce_rows(data["agentdojo"], props, config.agent_enforce, config.seed,
                                             config.max_new_tokens, result.decisions)


def _sweep(scorer: Scorer, cases: list[EvalCase], config: EvalConfig) -> list[dict[str, Any]]:
    """Improvement and unsafe share of the permissive propagator over λ, with and without the
    per-token guard (on a `MemoScorer`, so contexts already scored cost nothing)."""
    rows = []
    for lam, guard in tqdm([(lam, g) for g in (2.0, None) for lam in config.lambdas] if cases else [],
                           desc="λ sweep", leave=False):
        prop = make_propagator("permissive", scorer, tolerance=Tolerance.named(DEFAULT_CRITERION, lam, guard))
        pairs = []
        for case in cases:
            prop.lattice = case.lattice
            pairs.append((case, prop.label(case.query, case.documents, case.output, id=case.id)))
        m = summarise("synthetic+news", "permissive", "estimate", pairs)
        rows.append({"lam": lam, "guard": guard, "criterion": DEFAULT_CRITERION, "improved": m.improved, "unsafe": m.unsafe, "exact": m.exact})
    return rows


def supported_lambda(sweep: list[dict[str, Any]], guard: float | None = 2.0, criterion: str = DEFAULT_CRITERION,
                     group: str = "synthetic+news") -> float | None:
    """The λ the sweep supports, with a safety margin.

    Among the settings with the least unsafe share whose next larger λ has it too (so the choice
    is not at the edge of the safe region), take the highest exact-match share, then the most
    improvement, then the smaller λ.
    """
    rows = sorted((r for r in sweep if r["guard"] == guard and r["unsafe"] is not None
                   and r.get("criterion", DEFAULT_CRITERION) == criterion and r.get("group", "synthetic+news") == group),
                  key=lambda r: r["lam"])
    if not rows:
        return None
    least = min(r["unsafe"] for r in rows)
    safe = [a for a, b in zip(rows, rows[1:]) if a["unsafe"] <= least + 1e-12 and b["unsafe"] <= least + 1e-12]
    if not safe:
        return None
    return min(safe, key=lambda r: (-(r["exact"] or 0.0), -(r["improved"] or 0.0), r["lam"]))["lam"]


def _scaling(scorer: Scorer, config: EvalConfig, names: list[str]) -> list[dict[str, Any]]:
    """Time per estimate decision against the number of documents (one-fact chain cases)."""
    rows = []
    for n in tqdm(config.scaling, desc="scaling", leave=False):
        cases = [c for c in synthetic_cases(4 * 3 * config.scaling_cases, seed=config.seed + n, docs=n)
                 if c.kind == "one" and c.meta["lattice"] == "chain"][: config.scaling_cases]
        for name in names:
            prop = make_propagator(name, scorer)
            times, passes = [], []
            for case in cases:
                prop.label(case.query, case.documents, case.output)  # warm: kNN-LM encodes its store once
                d = prop.label(case.query, case.documents, case.output)
                times.append(d.wall_time_s)
                passes.append(d.passes)
            rows.append({"docs": n, "propagator": name, "seconds": sum(times) / len(times),
                         "passes": sum(passes) / len(passes)})
    return rows


def _peer(scorer: HFScorer, cases: list[EvalCase], config: EvalConfig,
          decisions: list[tuple[EvalCase, Decision]]) -> list[dict[str, Any]]:
    """ContextCite against the permissive propagator on the same synthetic cases."""
    from ._peer import contextcite

    rng = random.Random(config.seed)
    chosen = rng.sample(cases, min(config.peer, len(cases)))
    with tqdm(total=len(chosen), desc="ContextCite", leave=False) as bar:
        results = contextcite(scorer, chosen, ablations=config.peer_ablations, progress=bar)
    ours = {(c.id, d.propagator): d for c, d in decisions if d.mode == "estimate"}
    rows = []
    for r in results:
        row = {"case": r.case.id, "kind": r.case.kind, "truth": r.case.truth, "conservative": r.case.conservative,
               "contextcite": r.label, "contextcite_top_hit": r.top_hit, "contextcite_s": r.seconds,
               "contextcite_passes": r.passes}
        for name in ("permissive", "knnlm"):
            d = ours.get((r.case.id, name))
            if d is not None:
                row[name] = d.label
                row[f"{name}_s"] = d.wall_time_s
                row[f"{name}_passes"] = d.passes
        rows.append(row)
    return rows
