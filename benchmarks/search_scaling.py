"""How the label search scales with the number of distinct labels, and where its budget stops it.

For 2–16 distinct labels (one document per label) in a tags lattice (document i tagged {t_i}) and
a readers lattice (document i readable by everyone but p_i), both of which give 2^n candidate
labels, this prints: the candidates enumerated (or the refusal past `max_candidates`), the time
to enumerate them, and one whole `search_label` run with the default `SearchBudget` on scores
from a fake scorer that costs nothing (the output needs document 0): contexts scored, search
seconds, and the outcome (a label, or the budget's fallback reason). The fake scorer isolates the
search's own cost; on the embedded model each scored context adds the model's time on top
(about 0.1–0.5 s per context of a few hundred tokens on two CPU cores), which is what the
`max_scored` and `seconds` budgets bound. Run on an idle machine:

    .venv/bin/python benchmarks/search_scaling.py [--max 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from ifc_core import LabelledSource, Readers, Tags, Tolerance
from ifc_core._inputs import DecisionInputs
from ifc_core._search import SearchBudget, SearchBudgetError, candidate_labels, search_label


def documents(kind: str, n: int):
    names = [f"x{i}" for i in range(n)]
    lattice = Tags(names) if kind == "tags" else Readers(names)
    labels = [lattice.label([names[i]]) if kind == "tags" else lattice.label(names[:i] + names[i + 1:])
              for i in range(n)]
    docs = [LabelledSource(f"d{i}", f"document {i}", lab) for i, lab in enumerate(labels)]
    return lattice, docs


def fake_score(sets):
    """The output needs d0: contexts without it make every token 3 nats less likely."""
    return [np.full(8, -0.5 if "d0" in s else -3.5) for s in sets]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=16, help="largest number of distinct labels (default 16)")
    args = parser.parse_args()
    budget = SearchBudget()
    rows = []
    for kind in ("tags", "readers"):
        for n in tqdm(range(2, args.max + 1), desc=kind):
            lattice, docs = documents(kind, n)
            start = time.perf_counter()
            try:
                count = str(len(candidate_labels(lattice, [d.label for d in docs], limit=budget.max_candidates)))
            except SearchBudgetError:
                count = f"> {budget.max_candidates}"
            enumerate_s = time.perf_counter() - start
            inputs = DecisionInputs(LabelledSource("q", "?", lattice.bottom), docs, lattice)
            scored: list[frozenset[str]] = []

            def score(sets, scored=scored):
                scored.extend(sets)
                return fake_score(sets)

            start = time.perf_counter()
            try:
                label, _, _ = search_label(inputs, docs, score, Tolerance(), budget=budget)
                outcome = f"label {label}" if len(str(label)) < 30 else "label found"
            except SearchBudgetError as exc:
                outcome = "fallback: " + str(exc).split(";")[0]
            rows.append((kind, n, count, enumerate_s, len(scored), time.perf_counter() - start, outcome))
    print(f"\nSearchBudget defaults: {vars(budget)}\n")
    print("| lattice | distinct labels | candidates | enumerate s | contexts scored | search s | outcome |")
    print("|---|---|---|---|---|---|---|")
    for kind, n, count, e, k, s, outcome in rows:
        print(f"| {kind} | {n} | {count} | {e:.4f} | {k} | {s:.3f} | {outcome} |")


if __name__ == "__main__":
    main()
