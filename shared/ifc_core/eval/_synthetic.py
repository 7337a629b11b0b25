"""The paper's synthetic setting: questions answered from invented facts hidden among distractors.

Facts are invented (random names, numbers and places the model cannot know), so an answer that
states one must have used its document. Each case shows `docs` documents with random labels
from a chain, a readers lattice or a product lattice, and is one of:

- ``one`` / ``two``: the answer needs one or two of them;
- ``top``: the answer needs the most restricted one (its label is the join of all), so no
  improvement over the conservative label is possible;
- ``none``: a general-knowledge question; no document is needed.

Ground truth: the query's label (⊥) joined with the labels of the needed documents.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .. import _checks as checks
from .._lattice import Chain, Label, Lattice, Product, Readers
from .._sources import LabelledSource
from ._cases import EvalCase

__all__ = ["LATTICES", "synthetic_cases"]

LATTICES: dict[str, Lattice] = {
    "chain": Chain(["public", "internal", "confidential", "secret"]),
    "readers": Readers(["alice", "bob", "carol", "dave"]),
    "product": Product(conf=Chain(["public", "internal", "confidential"]), integrity=Chain(["trusted", "untrusted"])),
}

FIRST = ["Marta", "Orin", "Ilsa", "Tomas", "Dana", "Kerrin", "Yusra", "Bela", "Anneli", "Corvin", "Halvard", "Petra"]
LAST = ["Lindqvist", "Vale", "Varn", "Brill", "Koh", "Osgood", "Marrow", "Tessaly", "Quill", "Drummond", "Fenwick"]
PLACES = ["Zelbrook", "Osterby", "Kestrel", "Marrowdale", "Quellham", "Brisford", "Tarnwick", "Ulvenmoor"]
PROJECTS = ["Heron", "Juniper", "Basalt", "Lantern", "Cobalt", "Sparrow", "Orchid", "Granite"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]

GENERAL = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many days are in a week?", "There are seven days in a week."),
    ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
    ("What is two plus two?", "Two plus two is four."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What do bees make?", "Bees make honey."),
    ("What is frozen water called?", "Frozen water is called ice."),
    ("How many hours are in a day?", "There are 24 hours in a day."),
]

Fact = tuple[str, str, str, str]  # document text, question, answer, key


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


_TEMPLATES: list[Callable[[random.Random], Fact]] = [
    lambda r: (lambda p, n: (f"{p} earns {n:,} kroner per month.", f"How much does {p} earn?",
                             f"{p} earns {n:,} kroner per month.", f"{n:,}"))(_person(r), r.randrange(20, 99) * 1000),
    lambda r: (lambda pl, c: (f"The door code of the {pl} lab is {c}.", f"What is the door code of the {pl} lab?",
                              f"The door code of the {pl} lab is {c}.", str(c)))(r.choice(PLACES), r.randrange(1000, 9999)),
    lambda r: (lambda pr, d, m: (f"Project {pr} will launch on {m} {d}.", f"When will Project {pr} launch?",
                                 f"Project {pr} will launch on {m} {d}.", f"{m} {d}"))(
        r.choice(PROJECTS), r.randrange(2, 28), r.choice(MONTHS)),
    lambda r: (lambda p, y: (f"{p} was born in {y}.", f"When was {p} born?", f"{p} was born in {y}.", str(y)))(
        _person(r), r.randrange(1931, 1999)),
    lambda r: (lambda pl, port: (f"The {pl} server runs on port {port}.", f"Which port does the {pl} server use?",
                                 f"The {pl} server runs on port {port}.", str(port)))(r.choice(PLACES), r.randrange(2000, 9999)),
    lambda r: (lambda pr, p: (f"Project {pr} is led by {p}.", f"Who leads Project {pr}?",
                              f"Project {pr} is led by {p}.", p))(r.choice(PROJECTS), _person(r)),
    lambda r: (lambda pl, k: (f"The river near {pl} is {k} kilometres long.", f"How long is the river near {pl}?",
                              f"The river near {pl} is {k} kilometres long.", str(k)))(r.choice(PLACES), r.randrange(40, 900)),
]


def _facts(rng: random.Random, n: int) -> list[Fact]:
    """`n` facts with distinct subjects and keys, so no document answers another's question."""
    out: list[Fact] = []
    subjects: set[str] = set()
    while len(out) < n:
        fact = rng.choice(_TEMPLATES)(rng)
        subject = fact[1]
        if subject in subjects or any(fact[3] in f[0] or f[3] in fact[0] for f in out):
            continue
        subjects.add(subject)
        out.append(fact)
    return out


def random_label(rng: random.Random, lattice: Lattice) -> Label:
    if isinstance(lattice, Chain):
        return lattice.label(rng.choice(lattice.levels))
    if isinstance(lattice, Readers):
        return lattice.label(rng.sample(list(lattice.atoms), rng.randint(1, len(lattice.atoms))))
    assert isinstance(lattice, Product)
    return lattice.label({name: random_label(rng, part).to_json() for name, part in lattice.components.items()})


KINDS = ("one", "two", "top", "none")


def synthetic_cases(n: int = 200, *, seed: int = 0, docs: int = 5) -> list[EvalCase]:
    """`n` cases, cycling over lattices and kinds (one, two, top, none) for an even mix."""
    checks.whole(n, "n", low=0)
    checks.whole(seed, "seed", low=None)
    checks.whole(docs, "docs", low=2)  # a "two" case needs two documents
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        name = list(LATTICES)[i % len(LATTICES)]
        kind = KINDS[(i // len(LATTICES)) % len(KINDS)]
        cases.append(_case(rng, f"synthetic-{i}", name, kind, docs))
    return cases


def _case(rng: random.Random, cid: str, name: str, kind: str, n_docs: int) -> EvalCase:
    lattice = LATTICES[name]
    facts = _facts(rng, n_docs)
    labels = [random_label(rng, lattice) for _ in facts]
    needed = {"one": [0], "two": [0, 1], "top": [0], "none": []}[kind]
    if kind == "top":
        labels[0] = lattice.join_all(labels)
    elif needed and all(labels[i] == lattice.join_all(labels) for i in needed):
        labels[needed[0]] = random_label(rng, lattice)  # mostly leave room for improvement
    if kind == "none":
        question, answer = rng.choice(GENERAL)
    elif kind == "two":
        (_, q1, a1, _), (_, q2, a2, _) = facts[0], facts[1]
        question = f"{q1} And {q2[0].lower()}{q2[1:]}"
        answer = f"{a1[:-1]}, and {a2[0].lower()}{a2[1:]}"
    else:
        _, question, answer, _ = facts[0]
    order = list(range(n_docs))
    rng.shuffle(order)
    documents = tuple(LabelledSource(f"d{j}", facts[j][0], labels[j]) for j in order)
    truth = lattice.join_all([lattice.bottom, *(labels[j] for j in needed)])
    return EvalCase("synthetic", cid, kind, lattice, LabelledSource("q", question, lattice.bottom), documents,
                    answer, truth, tuple(f"d{j}" for j in needed), {f"d{j}": facts[j][3] for j in range(n_docs)},
                    {"lattice": name})
