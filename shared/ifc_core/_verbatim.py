"""Enforce mode over someone else's prompt: find the run's sources verbatim in it.

A framework's chat model receives finished messages, not our prompt. The sources of the run that
appear verbatim in those messages can be withheld; the others cannot be removed, so their labels
always count (they join the query's label). `label_in_prompt` labels an output that way, and
`strip_sources` removes withheld sources from each message before the regeneration.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ._lattice import Label
from ._propagators import Propagator
from ._record import Decision
from ._sources import LabelledSource

__all__ = ["label_in_prompt", "strip_sources"]


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
