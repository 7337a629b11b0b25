"""Calibrate the tolerance (λ and the per-token guard) on synthetic cases with known ground truth.

Each case hides invented facts among distractors in a 4-level chain; the answer needs one fact,
two facts, or none (general knowledge). Ground truth: query label ⊔ labels of the needed
documents. For each setting we report the share of cases labelled below the conservative label
(where that is possible) and the unsafe share (label below the ground truth). Every distinct
(context, output) pair is scored once and reused across settings, so the sweep costs one run.
Run: `.venv/bin/python benchmarks/calibrate_tolerance.py` (a few minutes on 2 cores).
"""

from __future__ import annotations

import random
from itertools import product

from tqdm import tqdm

from ifc_core import Chain, HFScorer, LabelledSource, PermissivePropagator, Tolerance
from ifc_core.scoring import MemoScorer

PAIRS = [
    (("The capital of Freedonia is Zelbrook.", "What is the capital of Freedonia?", "The capital of Freedonia is Zelbrook."),
     ("The mayor of Zelbrook is Ilsa Varn.", "Who is the mayor of Zelbrook?", "The mayor of Zelbrook is Ilsa Varn.")),
    (("Marta Lindqvist earns 84,000 kroner per month.", "How much does Marta Lindqvist earn?", "Marta Lindqvist earns 84,000 kroner per month."),
     ("Marta Lindqvist works in the Osterby office.", "Where does Marta Lindqvist work?", "Marta Lindqvist works in the Osterby office.")),
    (("Project Heron will launch on the 14th of May.", "When will Project Heron launch?", "Project Heron will launch on the 14th of May."),
     ("Project Heron is led by Tomas Brill.", "Who leads Project Heron?", "Project Heron is led by Tomas Brill.")),
    (("The Brambles Diner sauce uses smoked plum.", "What does the Brambles Diner sauce use?", "The Brambles Diner sauce uses smoked plum."),
     ("The Brambles Diner opens at 7 am.", "When does the Brambles Diner open?", "The Brambles Diner opens at 7 am.")),
    (("The door code of lab 4 is 7391.", "What is the door code of lab 4?", "The door code of lab 4 is 7391."),
     ("Lab 4 is on the third floor of the Kestrel building.", "Where is lab 4?", "Lab 4 is on the third floor of the Kestrel building.")),
    (("The river Quell is 212 kilometres long.", "How long is the river Quell?", "The river Quell is 212 kilometres long."),
     ("The river Quell flows into Lake Marrow.", "Where does the river Quell flow?", "The river Quell flows into Lake Marrow.")),
    (("Orin Vale was born in 1961.", "When was Orin Vale born?", "Orin Vale was born in 1961."),
     ("Orin Vale wrote the novel Glass Orchard.", "What did Orin Vale write?", "Orin Vale wrote the novel Glass Orchard.")),
    (("The Veltro server runs on port 8443.", "Which port does the Veltro server use?", "The Veltro server runs on port 8443."),
     ("The Veltro server is maintained by Dana Koh.", "Who maintains the Veltro server?", "The Veltro server is maintained by Dana Koh.")),
]
GENERAL = [("What is the capital of France?", "The capital of France is Paris."),
           ("How many days are in a week?", "There are seven days in a week."),
           ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
           ("What is two plus two?", "Two plus two is four.")]
CONF = Chain(["public", "internal", "confidential", "secret"])
LAMBDAS = [0.05, 0.1, 0.2, 0.35, 0.5, 1.0]
TOKEN_GUARDS = [None, 1.0, 2.0, 3.0]


def cases(seed: int = 0):
    rng = random.Random(seed)
    facts = [f for pair in PAIRS for f in pair]
    levels = CONF.levels

    def docs_with(needed: list[int]):
        others = rng.sample([i for i in range(len(facts)) if i not in needed], 5 - len(needed))
        chosen = needed + others
        rng.shuffle(chosen)
        labels = {i: rng.choice(levels) for i in chosen}
        if needed and all(labels[i] == "secret" for i in needed):  # leave room for improvement mostly
            labels[needed[0]] = rng.choice(levels[:3])
        docs = [LabelledSource(f"d{i}", facts[i][0], CONF.label(labels[i])) for i in chosen]
        truth = CONF.join_all([CONF.bottom, *(CONF.label(labels[i]) for i in needed)])
        return docs, truth

    out = []
    for i, (_, q, a) in enumerate(facts):
        docs, truth = docs_with([i])
        out.append(("one", q, a, docs, truth))
    for p, (f1, f2) in enumerate(PAIRS):
        docs, truth = docs_with([2 * p, 2 * p + 1])
        answer = f"{f1[2][:-1]}, and {f2[2][0].lower()}{f2[2][1:]}"
        out.append(("two", f"{f1[1]} And {f2[1][0].lower()}{f2[1][1:]}", answer, docs, truth))
    for q, a in GENERAL:
        docs, truth = docs_with([])
        out.append(("none", q, a, docs, truth))
    return out


def main() -> None:
    scorer = MemoScorer(HFScorer.load())  # each (context, output) scored once across the sweep
    data = cases()
    rows = []
    settings = list(product(LAMBDAS, TOKEN_GUARDS))
    for lam, guard in tqdm(settings, desc="settings"):
        prop = PermissivePropagator(scorer, tolerance=Tolerance(lam, guard))
        improved = possible = unsafe = exact = 0
        kinds = {"one": [0, 0], "two": [0, 0], "none": [0, 0]}
        for kind, q, a, docs, truth in data:
            d = prop.label(LabelledSource("q", q, CONF.bottom), docs, a)
            can_improve = truth < d.conservative_label
            possible += can_improve
            improved += can_improve and d.improved
            unsafe += not truth <= d.label
            exact += d.label == truth
            kinds[kind][0] += not truth <= d.label
            kinds[kind][1] += 1
        rows.append((lam, guard, improved / max(possible, 1), unsafe / len(data), exact / len(data),
                     *(f"{u}/{n}" for u, n in kinds.values())))
    print(f"{len(data)} cases (one-fact, two-fact, general knowledge), 5 documents each, 4-level chain\n")
    print("| λ | per-token guard (nats) | improved (of possible) | unsafe | exact | unsafe one | unsafe two | unsafe none |")
    print("|---|---|---|---|---|---|---|---|")
    for lam, guard, imp, uns, ex, *k in rows:
        print(f"| {lam} | {guard if guard is not None else 'off'} | {imp:.0%} | {uns:.0%} | {ex:.0%} | {' | '.join(k)} |")


if __name__ == "__main__":
    main()
