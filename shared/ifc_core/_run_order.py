"""The prompt order of a run's documents (``doc_order="run"``, `PermissivePropagator`).

An agent's next prompt is its last one plus an answer and a tool result. Showing the documents an
earlier decision of the run showed in the same places, and the new ones after them, makes the
run's next scoring contexts extend its last ones, so that the scorer's run cache (`RunCache`)
serves every shared prefix and only the new tokens are computed. The order changes no label: the
search is over labels, and every candidate context shows its documents in this same order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from ._inputs import DecisionInputs

if TYPE_CHECKING:
    from ._sources import LabelledSource

__all__ = ["RunOrders"]


class RunOrders:
    """The prompt order of each run's last decision (``doc_order="run"``), for at most `limit`
    runs (least recently used forgotten first; a forgotten run's next decision starts afresh)."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._runs: OrderedDict[str, dict[str, int]] = OrderedDict()
        self._lock = threading.Lock()

    def order(self, key: str, inputs: DecisionInputs) -> list[LabelledSource]:
        """The documents an earlier decision of run `key` showed, in that order, then the new
        ones sorted by label rank: the run's next prompt extends its last one."""
        with self._lock:
            last = self._runs.get(key, {})
        old = sorted((d for d in inputs.documents if d.id in last), key=lambda d: last[d.id])
        docs = old + inputs.by_rank([d for d in inputs.documents if d.id not in last])
        with self._lock:
            self._runs[key] = {d.id: i for i, d in enumerate(docs)}
            self._runs.move_to_end(key)
            while len(self._runs) > self.limit:
                self._runs.popitem(last=False)
        return docs

    def forget(self, key: str) -> None:
        """Drop run `key`'s order (its next decision starts afresh)."""
        with self._lock:
            self._runs.pop(key, None)

    def __len__(self) -> int:
        return len(self._runs)
