"""The report's sections for the hard groups (issue 17): targets met or not, the criteria, the
λ sweep per criterion, and what the scorer could not see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._hard_eval import GROUPS
from ._metrics import Metrics

if TYPE_CHECKING:
    from ._runner import EvalResult

__all__ = ["HARD_DESCRIPTIONS", "hard_sections", "targets"]

HARD_DESCRIPTIONS = {
    "paraphrase": "The needed fact restated in other words: numbers spaced or spelled, dates as ordinals, "
                  "names in another sentence. One or two needed documents among five. `reference` rows: the "
                  "exhaustive labeller (every candidate scored, same criterion), the achievable line.",
    "two-hop": "\"X's manager sits in Z\" from \"X's manager is Y\" and \"Y's office is in Z\" at different labels, "
               "among three distractors. Ground truth: the join of both. Reported on its own line (below).",
    "long-docs": "8–10 documents of 150–200 tokens of office filler with one fact each in the middle; the answer "
                 "needs one or two of them.",
    "many-labels": "8–12 one-fact documents with many distinct labels: readers over 8 principals, tags over 6 tags.",
    "decoy-overlap": "The entity is also named in a strictly lower document that states a different value "
                     "(\"last year the code was …\"); the answer states the higher document's value.",
    "model-written": "Answers the embedded model wrote itself from five one-fact documents, kept when they state "
                     "exactly one document's value; its label is the truth.",
}

_TARGET_UNSAFE, _TARGET_EXACT, _TARGET_GROUP, _TARGET_S = 0.01, 0.88, 0.03, 5.0


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(r) + " |" for r in rows)])


def _pooled(rows: Sequence[Metrics], field: str) -> float | None:
    """A share pooled over groups (weighted by cases)."""
    known = [m for m in rows if getattr(m, field) is not None]
    total = sum(m.cases for m in known)
    return sum(getattr(m, field) * m.cases for m in known) / total if total else None


def targets(result: EvalResult) -> list[dict[str, Any]]:
    """For each walk criterion measured on the hard groups (two-hop aside): the issue's targets."""
    out = []
    hard = [m for m in result.metrics if m.dataset in GROUPS and m.dataset != "two-hop" and m.mode == "estimate"
            and m.propagator.startswith("permissive")]
    for name in dict.fromkeys(m.propagator for m in hard):
        rows = [m for m in hard if m.propagator == name]
        unsafe, exact = _pooled(rows, "unsafe"), _pooled(rows, "exact")
        worst = max(rows, key=lambda m: m.unsafe or 0.0)
        # a row scored from the memo (passes 0: an earlier row scored its contexts) has no time of its own
        slow = {m.dataset: m.seconds for m in rows if m.dataset in ("long-docs", "many-labels") and m.passes}
        out.append({"propagator": name, "cases": sum(m.cases for m in rows), "unsafe": unsafe, "exact": exact,
                    "worst_group": worst.dataset, "worst_unsafe": worst.unsafe, "seconds": slow,
                    "met": {"unsafe <= 1%": unsafe is not None and unsafe <= _TARGET_UNSAFE,
                            "exact >= 88%": exact is not None and exact >= _TARGET_EXACT,
                            "no group above 3% unsafe": (worst.unsafe or 0.0) <= _TARGET_GROUP,
                            "long-docs, many-labels < 5 s": (all(v is not None and v < _TARGET_S for v in slow.values())
                                                             if slow else None)}})
    return out


def _verdict(ok: bool | None) -> str:
    return "not timed" if ok is None else "met" if ok else "NOT met"


def _notes(result: EvalResult) -> str:
    counts: dict[tuple[str, str], list[int]] = {}
    for case, d in result.decisions:
        if case.dataset in GROUPS and d.mode == "estimate" and d.propagator == "permissive":
            c = counts.setdefault((case.dataset, d.propagator), [0, 0, 0])
            noted = any(n.startswith("scorer limit") for n in d.notes)
            unsafe = case.truth is not None and not case.truth <= d.label
            c[0] += noted
            c[1] += unsafe
            c[2] += noted and unsafe
    if not counts:
        return ""
    return ("\n### What the scorer says it cannot see\n\nDecisions of the default walk whose record carries a "
            "*scorer limit* note (a withheld document whose names or numbers the output repeats made the output "
            "more likely), and how many unsafe labels the note flagged.\n\n" + _table(
                ["group", "noted", "unsafe", "unsafe and noted"],
                [[g, str(a), str(b), str(c)] for (g, _), (a, b, c) in counts.items()]) + "\n")


def hard_sections(result: EvalResult) -> str:
    """The markdown for the hard groups ('' when none ran)."""
    parts = []
    goals = targets(result)
    if goals:
        rows = [[g["propagator"], str(g["cases"]), _pct(g["unsafe"]), _pct(g["exact"]),
                 f"{g['worst_group']} {_pct(g['worst_unsafe'])}",
                 ", ".join(f"{k} {v:.2f} s" for k, v in g["seconds"].items()) or "scored from the memo",
                 ", ".join(f"{k}: {_verdict(ok)}" for k, ok in g["met"].items())] for g in goals]
        parts.append("## Hard groups: the targets of issue 17\n\nPermissive estimate mode on the hard groups other "
                     "than two-hop, pooled. Targets: unsafe ≤ 1% with exact ≥ 88%, no group above 3% unsafe, "
                     "long-docs and many-labels decisions under 5 s.\n\n" + _table(
                         ["walk", "cases", "unsafe", "exact", "worst group", "s / decision", "targets"], rows) + "\n")
        two = [m for m in result.metrics if m.dataset == "two-hop" and m.mode == "estimate"]
        if two:
            parts.append("**Two-hop, on its own line:** " + "; ".join(
                f"{m.propagator} {_pct(m.exact)} exact, {_pct(m.unsafe)} unsafe" for m in two) + ".\n")
    crit = [r for r in result.sweep if "group" in r]
    if crit:
        parts.append("## The λ sweep per criterion\n\nThe permissive walk (2-nat guard, on the tokens each criterion "
                     "guards) for each λ; *hard* pools the hard groups other than two-hop.\n\n" + _table(
                         ["group", "criterion", "λ", "improved (of possible)", "unsafe", "exact"],
                         [[r["group"], r["criterion"], f"{r['lam']:g}", _pct(r["improved"]), _pct(r["unsafe"]),
                           _pct(r["exact"])] for r in sorted(crit, key=lambda r: (r["group"], r["criterion"], r["lam"]))])
                     + "\n")
    parts.append(_notes(result))
    return "\n".join(p for p in parts if p)
