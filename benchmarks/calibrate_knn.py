"""Calibrate the kNN-LM propagator's α, k and temperature on the tolerance calibration's cases.

Same synthetic cases as `calibrate_tolerance.py` (one fact, two facts, or general knowledge among
5 documents in a 4-level chain); the tolerance stays at its calibrated default. One model pass per
case serves every setting (the pass is memoized), so the sweep is cheap. Prints one table row per
setting: improved (of possible), unsafe, exact. Run: `.venv/bin/python benchmarks/calibrate_knn.py`.
"""

from __future__ import annotations

import sys
from itertools import product
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parent))
from calibrate_tolerance import CONF, cases  # noqa: E402

from ifc_core import HFScorer, KNNLMPropagator, LabelledSource  # noqa: E402

ALPHAS = [0.1, 0.25, 0.5]
KS = [8, 16, 32]
TEMPERATURES = [10.0, 50.0, 200.0]


def main() -> None:
    scorer = HFScorer.load()
    memo: dict = {}
    original = KNNLMPropagator._answer_pass

    def answer_pass(self, context, y, spent):  # one pass per (question, output) for the whole sweep
        if (context, y) not in memo:
            memo[(context, y)] = original(self, context, y, spent)
        return memo[(context, y)]

    KNNLMPropagator._answer_pass = answer_pass  # type: ignore[method-assign]
    data = cases()
    rows = []
    for alpha, k, temp in tqdm(list(product(ALPHAS, KS, TEMPERATURES)), desc="settings"):
        prop = KNNLMPropagator(scorer, alpha=alpha, k=k, temperature=temp)
        improved = possible = unsafe = exact = 0
        for _, q, a, docs, truth in data:
            d = prop.label(LabelledSource("q", q, CONF.bottom), docs, a)
            can = truth < d.conservative_label
            possible += can
            improved += can and d.improved
            unsafe += not truth <= d.label
            exact += d.label == truth
        rows.append((alpha, k, temp, improved / max(possible, 1), unsafe / len(data), exact / len(data)))
    print(f"{len(data)} cases, 5 documents each, 4-level chain, default tolerance\n")
    print("| α | k | temperature | improved (of possible) | unsafe | exact |")
    print("|---|---|---|---|---|---|")
    for alpha, k, temp, imp, uns, ex in rows:
        print(f"| {alpha} | {k} | {temp:g} | {imp:.0%} | {uns:.0%} | {ex:.0%} |")


if __name__ == "__main__":
    main()
