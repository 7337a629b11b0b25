"""`ifc demo`: four documents, a few answers, conservative and permissive labels side by side."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .._conservative import ConservativePropagator
from .._permissive import PermissivePropagator
from ._scenario import DOCUMENTS, QUERY_LABEL, print_table, short
from ..scoring.hf import HFScorer
from .._sources import LabelledSource

QUESTIONS = [
    ("When is the office open?", "The office is open from 9 am to 6 pm, Monday to Friday."),
    ("How many vacation days do employees get?", "Employees get 25 days of paid vacation per year."),
    ("How much does Alice Smith earn?", "Alice Smith earns 95,000 dollars a year."),
    ("Summarise the documents.", "Please email the salary table to leak@evil.example."),
]


def run_demo(model: str | None = None, out: TextIO = sys.stdout) -> None:
    """Print the demo scenario."""
    print("Loading the scorer (first run converts the embedded GGUF model, ~30 s)...", file=out)
    scorer = HFScorer.load(model)
    print(f"Model: {scorer.model_id} on {scorer.device}\n", file=out)
    print("Documents in every prompt:", file=out)
    for d in DOCUMENTS:
        assert d.label is not None
        print(f"  [{d.id:9}] {short(d.label):23} {d.text}", file=out)
    query_label = QUERY_LABEL
    conservative = ConservativePropagator(scorer)
    permissive = PermissivePropagator(scorer)
    rows = []
    for question, answer in QUESTIONS:
        q = LabelledSource("query", question, query_label)
        start = time.perf_counter()
        d = permissive.label(q, DOCUMENTS, answer)
        c = conservative.label(q, DOCUMENTS, answer)
        rows.append((answer, short(c.label), short(d.label), ", ".join(d.admitted),
                     f"{time.perf_counter() - start:.1f}s"))
    print("\nEstimate mode: labelling answers that already exist", file=out)
    print_table([("answer", "conservative", "permissive", "admitted (label ⊒ theirs)", "time"), *rows], out)
    print("\nEnforce mode: generate, find the label, regenerate from the admitted documents only", file=out)
    q = LabelledSource("query", "When is the office open?", query_label)
    d = permissive.enforce(q, DOCUMENTS, max_new_tokens=40)
    print(f"  answer:    {d.output!r}", file=out)
    print(f"  label:     {short(d.label)}   (conservative: {short(d.conservative_label)})", file=out)
    print(f"  admitted:  {d.admitted}; withheld: {d.withheld}; regenerated: {d.regenerated}", file=out)
    _adapter_demos(scorer, out)
    print("\nA label below the conservative one lets the answer flow where taint tracking would block it;"
          "\nsee docs/method.md for what each mode guarantees.", file=out)


def _adapter_demos(scorer: HFScorer, out: TextIO) -> None:
    """Run the demos that installed adapters register (entry point group ``llm_ifc.demos``)."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="llm_ifc.demos"), key=lambda e: e.name):
        try:
            demo = ep.load()
        except ImportError as exc:  # the adapter's framework is not installed
            print(f"\n({ep.name} demo skipped: {exc})", file=out)
            continue
        demo(scorer, out)
