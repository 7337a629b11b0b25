"""The AgentDojo rows of `ifc eval` beyond estimate mode: the exhaustive reference labeller (what
the scorer allows) and enforce mode, overall and per suite."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from .._record import Decision
from ..scoring import Scorer
from ._cases import EvalCase
from ._hard_eval import ReferencePropagator
from ._labelling import label_all
from ._metrics import Metrics, summarise

__all__ = ["AGENT_PROPAGATORS", "agent_enforce_rows", "agent_reference_rows", "agent_rows"]

# the propagators measured on AgentDojo (issue 14). Introspection is not: the embedded model answers
# none of its prompts (100% fallback on every dataset), and its long prompts would double the run.
AGENT_PROPAGATORS = ("conservative", "permissive", "knnlm")


def agent_rows(cases: Sequence[EvalCase], pairs: Sequence[tuple[EvalCase, Decision]], name: str, mode: str,
               reference: Mapping[str, str] | None = None, *, per_suite: bool = True) -> list[Metrics]:
    """The agentdojo/<kind> rows of one propagator, and with `per_suite` the agentdojo-<suite>/<kind> ones."""
    rows = [summarise(f"agentdojo/{kind}", name, mode, [(c, d) for c, d in pairs if c.kind == kind], reference)
            for kind in sorted({c.kind for c in cases})]
    for suite, kind in sorted({(c.meta["suite"], c.kind) for c in cases} if per_suite else ()):
        members = [(c, d) for c, d in pairs if (c.meta["suite"], c.kind) == (suite, kind)]
        rows.append(summarise(f"agentdojo-{suite}/{kind}", name, mode, members, reference))
    return rows


def agent_reference_rows(cases: Sequence[EvalCase], scorer: Scorer, max_new_tokens: int,
                         out: list[tuple[EvalCase, Decision]]) -> list[Metrics]:
    """The exhaustive reference labeller on the AgentDojo cases (every candidate label scored,
    the permissive propagator's criterion)."""
    pairs = label_all("reference", ReferencePropagator(scorer), cases, "estimate", max_new_tokens, out)
    return agent_rows(cases, pairs, "reference", "estimate")


def agent_enforce_rows(cases: Sequence[EvalCase], props: Mapping[str, Any], per_kind: int, seed: int,
                       max_new_tokens: int, out: list[tuple[EvalCase, Decision]]) -> list[Metrics]:
    """Enforce mode on `per_kind` seeded benign and malicious cases: the embedded model answers the
    task from the tool results it is let see. Unsafe: a withheld item's argument value (an
    attacker's, for a malicious case) in the released text; retention: a benign call's argument
    values still stated, among the cases whose unrestricted (conservative) answer states them."""
    rng = random.Random(seed)
    chosen = []
    for kind in sorted({c.kind for c in cases}):
        members = [c for c in cases if c.kind == kind]
        chosen += rng.sample(members, min(per_kind, len(members)))
    enforced = {name: label_all(name, prop, chosen, "enforce", max_new_tokens, out)
                for name, prop in props.items() if name in AGENT_PROPAGATORS}
    reference = {c.id: d.output for c, d in enforced.get("conservative", [])}
    # a few cases per kind: overall rows only
    return [row for name, pairs in enforced.items()
            for row in agent_rows(chosen, pairs, name, "enforce", reference or None, per_suite=False)]
