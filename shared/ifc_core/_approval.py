"""Approvals bound to the exact call: what a reviewer is shown, and how an answer is read.

A refused call can be put to a human. The request shows the tool, its arguments, the label, the
sink, the reason and a digest of (tool, arguments, tool-call id, label). The answer must echo the
digest: if the call changed between the request and the answer (an edited checkpoint, another
label), the digest no longer matches, the answer is not taken and the reviewer is asked again.
Answers use the decision format of LangChain's `HumanInTheLoopMiddleware` (approve / edit /
reject / respond), so approval UIs built for it work as they are, with one field echoed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._policy import FlowCheck

__all__ = ["Review", "approval_request", "call_digest", "read_review", "DECISIONS"]

DECISIONS = ("approve", "edit", "reject", "respond")


def call_digest(tool: str, args: Mapping[str, Any] | None, tool_call_id: str | None, label: Any) -> str:
    """The digest an answer must echo: it changes with the tool, any argument, the call id or the label."""
    body = json.dumps([tool, args or {}, tool_call_id, label.to_json()], sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Review:
    """A reviewer's answer, read: `kind` is one of `DECISIONS`; `args` the edited arguments
    (edit), `message` what the reviewer wrote (reject, respond)."""

    kind: str
    args: dict[str, Any] | None = None
    message: str | None = None


def approval_request(check: FlowCheck, args: Mapping[str, Any] | None, run: Any = None) -> dict[str, Any]:
    """What the reviewer is shown: the refused call, why, and the digest to echo.

    Shaped like LangChain's `HITLRequest` (``action_requests``, ``review_configs``) with the IFC
    fields beside them. ``arguments`` shows each argument with its label: its own, where it was
    scored as its own span (``own_label``), else the call's; ``argument`` names the one refused.
    """
    digest = call_digest(check.tool, args, check.tool_call_id, check.label)
    own = check.argument_labels
    arguments = {name: {"value": value, "label": own.get(name, check.label).to_json(), "own_label": name in own}
                 for name, value in dict(args or {}).items()}
    labels = "; ".join(f"{name}: {a['label']}" for name, a in arguments.items() if a["own_label"])
    description = f"IFC: {check.reason}" + (f" (argument labels: {labels})" if labels else "")
    return {
        "type": "ifc_approval", "tool": check.tool, "args": dict(args or {}), "tool_call_id": check.tool_call_id,
        "label": check.label.to_json(), "sink": check.sink.to_json(), "reason": check.reason,
        "argument": check.argument, "arguments": arguments,
        "digest": digest, "run": None if run is None else str(run),
        "action_requests": [{"name": check.tool, "args": dict(args or {}), "description": description,
                             "ifc_digest": digest}],
        "review_configs": [{"action_name": check.tool, "allowed_decisions": list(DECISIONS)}],
    }


def read_review(answer: Any, digest: str) -> tuple[Review | None, str | None]:
    """(review, None), or (None, why the answer cannot be taken).

    Accepted: ``{"decisions": [{"type": "approve" | "edit" | "reject" | "respond", ...}]}`` (the
    HITL format; ``edit`` carries ``edited_action: {"name", "args"}``, ``reject`` and ``respond`` a
    ``message``) or ``{"approve": true | false}``; either with ``"ifc_digest"`` (in the decision
    or beside it) equal to the request's digest.
    """
    if not isinstance(answer, Mapping):
        return None, f"an answer is an object with 'decisions' (or 'approve') and 'ifc_digest', not {answer!r}"
    decision: Mapping[str, Any]
    if isinstance(answer.get("decisions"), list) and len(answer["decisions"]) == 1 and \
            isinstance(answer["decisions"][0], Mapping):
        decision = answer["decisions"][0]
    elif isinstance(answer.get("approve"), bool):
        decision = {"type": "approve" if answer["approve"] else "reject", "message": answer.get("message")}
    else:
        return None, "give one decision: {'decisions': [{'type': 'approve'}], 'ifc_digest': ...}"
    echoed = decision.get("ifc_digest", answer.get("ifc_digest"))
    if echoed != digest:
        return None, ("the answer does not echo this call's digest (the call changed since it was shown, or "
                      "the answer belongs to another request): review the call again")
    kind = decision.get("type")
    if kind not in DECISIONS:
        return None, f"unknown decision type {kind!r}; use one of {list(DECISIONS)}"
    if kind == "edit":
        edited = decision.get("edited_action")
        if not isinstance(edited, Mapping) or not isinstance(edited.get("args"), Mapping):
            return None, "an edit needs edited_action: {'name': ..., 'args': {...}}"
        return Review("edit", dict(edited["args"])), None
    message = decision.get("message")
    return Review(kind, message=str(message) if message is not None else None), None
