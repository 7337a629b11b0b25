"""``model-written``: answers the embedded model writes itself (issue 17).

Five one-fact documents with random labels (chain, readers, product), a question about one of
them, and the model's own greedy answer from every document. A case is kept when the answer
states exactly one document's invented value; its ground truth is the query's label (⊥) joined
with that document's label. Answers that state no value or several are dropped (and counted).
"""

from __future__ import annotations

import random
from typing import Any

from .. import _checks as checks
from .._prompt import ChatPrompt
from .._sources import LabelledSource
from ._cases import EvalCase
from ._hard import _labels
from ._synthetic import LATTICES, _facts

__all__ = ["model_written_cases"]


def model_written_cases(scorer: Any, n: int = 30, *, seed: int = 0, max_new_tokens: int = 40,
                        tries: int = 3, dropped: list[str] | None = None) -> list[EvalCase]:
    """Up to `n` kept cases from at most `tries * n` generations (seeded; greedy decoding)."""
    checks.scorer(scorer)
    checks.whole(n, "n", low=0)
    checks.whole(seed, "seed", low=None)
    checks.whole(max_new_tokens, "max_new_tokens")
    checks.whole(tries, "tries")
    checks.instance(dropped, list, "dropped", "a list", optional=True)
    rng = random.Random(f"model-written:{seed}")
    prompt = ChatPrompt(scorer)
    cases: list[EvalCase] = []
    for i in range(tries * n):
        if len(cases) == n:
            break
        name = list(LATTICES)[i % 3]
        lattice = LATTICES[name]
        facts = _facts(rng, 5)
        labels = _labels(rng, lattice, 5, [0])
        order = list(range(5))
        rng.shuffle(order)
        docs = tuple(LabelledSource(f"d{j}", facts[j][0], labels[j]) for j in order)
        question = facts[0][1]
        gen = scorer.generate(prompt.build(question, docs).ids, max_new_tokens)
        answer = scorer.decode(gen.ids).strip()
        stated = [j for j in range(5) if facts[j][3] in answer]
        if len(stated) != 1:
            if dropped is not None:
                dropped.append(f"model-written-{i}: states {len(stated)} values: {answer[:60]!r}")
            continue
        j = stated[0]
        cases.append(EvalCase("model-written", f"model-written-{i}", "one", lattice,
                              LabelledSource("q", question, lattice.bottom), docs, answer,
                              lattice.join_all([lattice.bottom, labels[j]]), (f"d{j}",),
                              {f"d{k}": facts[k][3] for k in range(5)}, {"lattice": name}))
    return cases
