"""Calibrate the kNN-LM propagator's α, k and temperature.

`--cases small`: the 28 cases of `calibrate_tolerance.py` (one fact, two facts, or general
knowledge among 5 documents in a 4-level chain). `--cases eval` (default): the 200 synthetic and
60 news cases of the default `ifc eval` run (chain, readers and product lattices; conflicting
sources). The tolerance stays at its default. One model pass per case serves every setting (the
pass is memoized), so the sweep is cheap. Prints one table row per setting: improved (of
possible), unsafe, exact. Run: `.venv/bin/python benchmarks/calibrate_knn.py`.
"""

from __future__ import annotations

import sys
from itertools import product
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from calibrate_tolerance import CONF, cases  # noqa: E402

from ifc_core import HFScorer, KNNLMPropagator, LabelledSource  # noqa: E402
from ifc_core.eval import news_cases, synthetic_cases  # noqa: E402

ALPHAS = [0.1, 0.25, 0.5, 0.75]
KS = [8, 16, 32]
TEMPERATURES = [10.0, 50.0, 200.0]


def eval_cases():
    """(kind, query, answer, documents, truth, lattice) of the default `ifc eval` run."""
    return [(c.kind, c.query, c.output, list(c.documents), c.truth, c.lattice)
            for c in [*synthetic_cases(200), *news_cases(30)]]


def small_cases():
    return [(k, LabelledSource("q", q, CONF.bottom), a, d, t, CONF) for k, q, a, d, t in cases()]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", choices=["eval", "small"], default="eval")
    args = parser.parse_args()
    scorer = HFScorer.load()
    memo: dict = {}
    original = KNNLMPropagator._answer_pass

    def answer_pass(self, context, y, spent):  # one pass per (question, output) for the whole sweep
        if (context, y) not in memo:
            memo[(context, y)] = original(self, context, y, spent)
        return memo[(context, y)]

    KNNLMPropagator._answer_pass = answer_pass  # type: ignore[method-assign]
    data = eval_cases() if args.cases == "eval" else small_cases()
    rows = []
    for alpha, k, temp in tqdm(list(product(ALPHAS, KS, TEMPERATURES)), desc="settings"):
        prop = KNNLMPropagator(scorer, alpha=alpha, k=k, temperature=temp)
        improved = possible = unsafe = exact = 0
        for _, query, a, docs, truth, lattice in data:
            prop.lattice = lattice
            d = prop.label(query, docs, a)
            can = truth < d.conservative_label
            possible += can
            improved += can and d.improved
            unsafe += not truth <= d.label
            exact += d.label == truth
        rows.append((alpha, k, temp, improved / max(possible, 1), unsafe / len(data), exact / len(data)))
    print(f"{len(data)} cases ({args.cases}), default tolerance\n")
    print("| α | k | temperature | improved (of possible) | unsafe | exact |")
    print("|---|---|---|---|---|---|")
    for alpha, k, temp, imp, uns, ex in rows:
        print(f"| {alpha} | {k} | {temp:g} | {imp:.0%} | {uns:.0%} | {ex:.0%} |")


if __name__ == "__main__":
    main()
