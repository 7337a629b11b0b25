"""Many decisions at once through one server: every one correct (the engine batches across them)."""

import asyncio

import pytest

from ifc_core import LabelledSource, PermissivePropagator

from ..facts import docs
from ..test_permissive import CASES

pytestmark = [pytest.mark.model, pytest.mark.vllm]


def jobs(n):
    out = []
    for i in range(n):
        lattice, qlabel, labels, (question, answer), expected = CASES[i % len(CASES)].values
        out.append((LabelledSource("q", question, lattice.label(qlabel)), docs(lattice, labels), answer,
                    lattice.label(expected)))
    return out


def test_16_concurrent_decisions_are_all_correct(served):
    prop = PermissivePropagator(served)
    work = jobs(16)
    sequential = {i: prop.label(q, d, a) for i, (q, d, a, _) in enumerate(work[: len(CASES)])}

    async def all_at_once():  # as the adapters call it: worker threads under an event loop
        return await asyncio.gather(*(asyncio.to_thread(prop.label, q, d, a, id=str(i))
                                      for i, (q, d, a, _) in enumerate(work)))

    decisions = asyncio.run(all_at_once())
    assert [d.id for d in decisions] == [str(i) for i in range(16)]
    for i, (d, (_, _, _, expected)) in enumerate(zip(decisions, work)):
        assert d.fallback_reason is None, d.fallback_reason
        assert d.label == expected, (i, d.candidates)
        alone = sequential[i % len(CASES)]
        assert d.admitted == alone.admitted
        assert [c.mean_nll for c in d.candidates] == pytest.approx([c.mean_nll for c in alone.candidates], abs=1e-4)
