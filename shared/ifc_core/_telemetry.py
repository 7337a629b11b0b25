"""Where decisions and checks are reported: Python logging under one logger, and OpenTelemetry.

Logger ``llm_ifc``: every decision at DEBUG, a decision that fell back to the conservative label
and every refused call at WARNING. Nothing is printed: configure the logger as usual. When
`opentelemetry-api` is installed, each decision and each check is also an event on the current
span (``ifc.decision``, ``ifc.check``) with its label, sink and reason; with no active span,
nothing is recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable
from typing import Any

__all__ = ["LOGGER_NAME", "report_check", "report_decision"]

LOGGER_NAME = "llm_ifc"
_log = logging.getLogger(LOGGER_NAME)

try:  # optional: only when the application uses OpenTelemetry
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - the dependency is optional
    _trace = None


def _span_event(name: str, attributes: dict[str, Any]) -> None:
    if _trace is None:
        return
    span = _trace.get_current_span()
    if span.is_recording():
        span.add_event(name, {k: v if isinstance(v, (str, bool, int, float)) else json.dumps(v, default=str)
                              for k, v in attributes.items() if v is not None})


def report_decision(run: Hashable, decision: Any) -> None:
    """Log a decision (DEBUG; WARNING when it fell back) and add it to the current span."""
    attributes = {"ifc.run": str(run), "ifc.mode": decision.mode, "ifc.propagator": decision.propagator,
                  "ifc.label": decision.label.to_json(), "ifc.conservative_label": decision.conservative_label.to_json(),
                  "ifc.fallback_reason": decision.fallback_reason, "ifc.regenerated": decision.regenerated}
    if decision.fallback_reason:
        _log.warning("run %s: %s decision fell back to the conservative label %s: %s", run, decision.mode,
                     decision.label, decision.fallback_reason)
    else:
        _log.debug("run %s: %s decision %s (conservative %s), admitted %s", run, decision.mode, decision.label,
                   decision.conservative_label, decision.admitted)
    _span_event("ifc.decision", attributes)


def report_check(run: Hashable, check: Any) -> None:
    """Log a tool-call check (DEBUG; WARNING when refused) and add it to the current span."""
    attributes = {"ifc.run": str(run), "ifc.tool": check.tool, "ifc.argument": check.argument,
                  "ifc.tool_call_id": check.tool_call_id, "ifc.label": check.label.to_json(),
                  "ifc.sink": check.sink.to_json(), "ifc.allowed": check.allowed, "ifc.reason": check.reason}
    if check.allowed:
        _log.debug("run %s: %s", run, check.reason)
    else:
        _log.warning("run %s: refused: %s", run, check.reason)
    _span_event("ifc.check", attributes)
