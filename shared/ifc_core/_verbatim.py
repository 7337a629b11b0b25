"""Enforce mode over someone else's prompt: find the run's sources verbatim in it.

A framework's chat model receives finished messages, not our prompt. The sources of the run that
appear verbatim in those messages can be withheld; the others cannot be removed, so their labels
always count (they join the query's label). `label_in_prompt` labels an output that way, and
`strip_sources` removes withheld sources from each message before the regeneration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ._lattice import Label
from ._propagators import Propagator
from ._record import Decision
from ._sources import LabelledSource

__all__ = ["enforce_in_prompt", "label_in_prompt", "strip_sources"]


def _key(source: LabelledSource) -> str:
    return source.text.strip()


def strip_sources(text: str, sources: Sequence[LabelledSource]) -> str:
    """`text` with every occurrence of each source's text removed."""
    for s in sources:
        if _key(s):
            text = text.replace(_key(s), "")
    return re.sub(r"\n{3,}", "\n\n", text)  # no gaps where documents were


def label_in_prompt(propagator: Propagator, query_label: Label, sources: Sequence[LabelledSource],
                    prompt_texts: Sequence[str], output: str, *, id: str | None = None) -> Decision:
    """Label `output` of a prompt made of `prompt_texts`; sources found verbatim may be withheld."""
    joined = "\n".join(prompt_texts)
    located = [s for s in sources if _key(s) and _key(s) in joined]
    pinned = [s for s in sources if s not in located]
    floor = query_label.lattice.join_all([query_label, *(s.label or query_label.lattice.top for s in pinned)])
    decision = propagator.label(LabelledSource("prompt", strip_sources(joined, located), floor), located, output, id=id)
    decision.notes.extend(f"{s.id}: not found verbatim in the prompt; its label always counts" for s in pinned)
    return decision


def enforce_in_prompt(propagator: Propagator, query_label: Label, sources: Sequence[LabelledSource],
                      prompt_texts: Sequence[str], generate: Callable[[list[LabelledSource]], str], *,
                      id: str | None = None) -> Decision:
    """Enforce mode over a framework's prompt.

    `generate(withheld)` must answer the prompt with those sources' text removed (see
    `strip_sources`). The first answer sees everything; if the search withholds sources, the
    released answer is generated again without them. The decision's `output` is the released text.
    """
    first = generate([])
    decision = label_in_prompt(propagator, query_label, sources, prompt_texts, first, id=id)
    withheld = [s for s in sources if s.id in decision.withheld]
    if withheld and decision.fallback_reason is None:
        decision.output = generate(withheld)
        decision.regenerated = True
    decision.mode = "enforce"
    return decision
