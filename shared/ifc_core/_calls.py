"""Tool-call checks: every call is checked with the label of the model output that produced that
very call (the part of `FlowTracker` that decides them; mixed into it)."""

from __future__ import annotations

import difflib
import json
import re
import time
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from ._account import Known
from ._attest import digest
from ._errors import IFCViolation
from ._lattice import Label
from ._policy import FlowCheck
from ._record import Decision
from ._telemetry import report_check

if TYPE_CHECKING:
    from ._tracker import FlowTracker

__all__ = ["CallChecks", "args_key"]


def _quotes(value: str, text: str) -> bool:
    """Whether `value` quotes `text`: 12 characters in a row, or a number, in common."""
    match = difflib.SequenceMatcher(None, value, text, autojunk=False).find_longest_match(0, len(value), 0, len(text))
    numbers = set(re.findall(r"\d[\d,.:/-]*\d", value)) & set(re.findall(r"\d[\d,.:/-]*\d", text))
    return match.size >= 12 or bool(numbers)


def args_key(args: Mapping[str, Any] | None) -> str:
    """A canonical form of a call's arguments, to tell whether a call is the one proposed."""
    return json.dumps(args if args is not None else {}, sort_keys=True, ensure_ascii=True, default=str)


class CallChecks:
    """Binds each tool call to the decision of the output that made it, and checks it."""

    def label_of_call(self: FlowTracker, key: Hashable | None, tool: str, args: Mapping[str, Any] | None,
                      tool_call_id: str | None = None) -> tuple[Label, Decision | None, str]:
        """(label, decision, how it was found) for a call about to run.

        By tool-call id, when the run recorded an output that made a call with that id, and the
        call still has that output's tool and arguments. Outputs that name calls without ids (ReAct
        actions) are matched by tool and arguments, joining every output that proposed the same
        call. Anything else (an unknown call, or one changed since the model made it) is ⊤:
        never "the latest output". The label is the call's own (`Decision.call_labels`).
        """
        label, _, decision, how = self.labels_of_call(key, tool, args, tool_call_id)
        return label, decision, how

    def labels_of_call(self: FlowTracker, key: Hashable | None, tool: str, args: Mapping[str, Any] | None,
                       tool_call_id: str | None = None) -> tuple[Label, dict[str, Label], Decision | None, str]:
        """`label_of_call`, with each argument's own label where it was scored."""
        top = self.lattice.top
        st = self.get(key) if key is not None else None
        if st is None:
            return top, {}, None, "no output of this run is known: checked as ⊤"
        wanted = (str(tool), args_key(args))
        with st.lock:
            by_id = st.by_tool_call.get(str(tool_call_id)) if tool_call_id else None
            unbound = [(d, i) for name, a, d, i in st.unbound if (name, a) == wanted]
        if by_id is not None:
            name, recorded, decision, index = by_id
            if (name, recorded) == wanted:
                label, arguments = decision.call_labels(index)
                return label, arguments, decision, f"the output that made call {tool_call_id!r}"
            return top, {}, decision, (f"call {tool_call_id!r} differs from the call its output made "
                                       "(tool or arguments changed since): checked as ⊤")
        if unbound:
            found = [d.call_labels(i) for d, i in unbound]
            names = {a for _, arguments in found for a in arguments}
            joined = {a: self.lattice.join_all(arguments.get(a, label) for label, arguments in found) for a in names}
            return (self.lattice.join_all(label for label, _ in found), joined, unbound[-1][0],
                    f"the output(s) that proposed this exact call ({len(unbound)})")
        return top, {}, None, "no output of this run made this call: checked as ⊤"

    def check_call(self: FlowTracker, key: Hashable | None, tool: str, args: Mapping[str, Any] | None,
                   tool_call_id: str | None = None, *, raise_on_violation: bool = False) -> FlowCheck:
        """Check a tool call against the policy; record it; optionally raise `IFCViolation`.

        The call is checked with its own label, and each argument that has a sink of its own
        (`Policy.arguments`) with that argument's own label where it was scored (estimate mode;
        a violation names the argument)."""
        label, arguments, decision, how = self.labels_of_call(key, tool, args, tool_call_id)
        check = self.policy.check(tool, label, args, argument_labels=arguments, tool_call_id=tool_call_id,
                                  provenance=how)
        if key is not None:
            st = self.state(key)
            with st.lock:
                st.checks.append(check)
                del st.checks[:-1024]
        report_check(key, check)
        if not check.allowed:
            if self.audit:
                self.audit.write({"event": "ifc.violation", "run": str(key), **check.to_dict()})
            if raise_on_violation:
                raise IFCViolation(check, decision)
        return check

    def decision_for_call(self: FlowTracker, tool_call_id: str, key: Hashable | None = None) -> Decision | None:
        """The decision that labelled the output which made tool call `tool_call_id` (in run `key`,
        or the newest run that has it)."""
        runs = [(key, self.get(key))] if key is not None else list(reversed(self.runs()))
        for _, st in runs:
            if st is None:
                continue
            with st.lock:
                if tool_call_id in st.by_tool_call:
                    return st.by_tool_call[tool_call_id][2]
        return None

    def check_edit(self: FlowTracker, key: Hashable | None, check: FlowCheck, original: Mapping[str, Any] | None,
                   edited: Mapping[str, Any]) -> FlowCheck:
        """Check a call a reviewer edited, before it runs. An edit approves what it keeps as it was
        shown (as an approval approves the whole call); each changed argument carries the
        reviewer's label (the query's) joined with the labels of every registered source or
        earlier answer its text contains. So an edit cannot smuggle data above the sink."""
        label = self.query_label
        original = original or {}
        known = self._withholdable(key)
        for name, value in edited.items():
            if name in original and args_key({"v": original[name]}) == args_key({"v": value}):
                continue  # shown to the reviewer and kept: approved
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            label = label.join(self.lattice.join_all(k.label for k in known if k.label is not None
                                                     and _quotes(text, k.text)))
        return self.policy.check(check.tool, label, edited, tool_call_id=check.tool_call_id,
                                 provenance="a call edited by a reviewer, checked again")

    def _withholdable(self: FlowTracker, key: Hashable | None) -> list[Known]:
        st = self.get(key) if key is not None else None
        if st is None:
            return []
        with st.lock:
            return [Known(s.text, "source", s.label, s.id) for s in st.sources.values()] + list(st.outputs)

    def record_approval(self: FlowTracker, key: Hashable | None, check: FlowCheck, review: Any,
                        args: Mapping[str, Any] | None = None, answer: Any = None) -> None:
        """Audit a reviewer's answer on a refused call: run or thread, tool-call id, argument
        digest, the answer and the time."""
        if self.audit:
            self.audit.write({"event": "ifc.approval", "run": None if key is None else str(key),
                              "decision": getattr(review, "kind", review), "answer": answer,
                              "args_digest": digest(args_key(args)), "time": time.time(), **check.to_dict()})
