"""`guard_tool`: label-checked tools for LlamaIndex agents and workflows.

(No `from __future__ import annotations` here: LlamaIndex finds the `ctx: Context` parameter it
must inject by its real annotation, not a string.)
"""


from collections.abc import Sequence
from typing import Any, Literal, Optional

from llama_index.core.tools import BaseTool, FunctionTool, adapt_to_async_tool
from llama_index.core.workflow import Context
from pydantic import Field
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent
from workflows.handler import WorkflowHandler

from ifc_core import ConfigurationError, FlowCheck, IFCViolation, approval_request, read_review

from ._events import IFCEventHandler

__all__ = ["IFCApprovalRequired", "IFCApprovalResponse", "IFCViolationEvent", "guard_tool", "guard_tools",
           "raise_on_violation"]


class IFCApprovalRequired(InputRequiredEvent):
    """Asks a human whether a refused call may go ahead (answer with `IFCApprovalResponse`).

    Shows the call (`tool`, `args`, `tool_call_id`), its `label`, the `sink`, the `reason` and the
    `digest` the answer must echo; `problem` says why an earlier answer was not taken."""

    waiter_id: str
    tool: str
    args: dict = Field(default_factory=dict)
    tool_call_id: Optional[str] = None
    label: Any = None
    sink: Any = None
    reason: str = ""
    digest: str = ""
    problem: Optional[str] = None


class IFCApprovalResponse(HumanResponseEvent):
    """The human's answer to `IFCApprovalRequired` (same `waiter_id`, its `digest` echoed).

    ``decision`` is "approve", "edit" (with `edited_args`, checked again before the call runs),
    "reject" or "respond" (with `message`, given to the agent as the tool's result);
    ``approve=True/False`` is the short form."""

    waiter_id: str
    digest: str = ""
    decision: Optional[str] = None
    approve: Optional[bool] = None
    edited_args: Optional[dict] = None
    message: Optional[str] = None

    def as_answer(self) -> dict[str, Any]:
        """The answer in the engine's (HITL) decision format."""
        kind = self.decision or ("approve" if self.approve else "reject")
        decision: dict[str, Any] = {"type": kind, "message": self.message, "ifc_digest": self.digest}
        if kind == "edit":
            decision["edited_action"] = {"args": self.edited_args}
        return {"decisions": [decision]}


class IFCViolationEvent(Event):
    """Written to the event stream when a call is refused (`check` holds the full verdict)."""

    tool: str
    label: Any
    sink: Any
    reason: str
    check: Any = Field(default=None, exclude=True)


def _event_fields(check: FlowCheck) -> dict[str, Any]:
    return {"tool": check.tool, "label": check.label.to_json(), "sink": check.sink.to_json(), "reason": check.reason}


async def _review(ctx: Context, ifc: IFCEventHandler, run: Any, check: FlowCheck, kwargs: dict) -> Any:
    """Ask until an answer echoes this call's digest; (review, the arguments to run with)."""
    request = approval_request(check, kwargs, run=run)
    problem = None
    for attempt in range(16):  # the step runs again once an answer arrives: waiter ids must be stable
        waiter = f"ifc-{request['digest']}-{attempt}"
        event = IFCApprovalRequired(waiter_id=waiter, tool=check.tool, args=request["args"],
                                    tool_call_id=check.tool_call_id, label=request["label"], sink=request["sink"],
                                    reason=check.reason, digest=request["digest"], problem=problem)
        answer = await ctx.wait_for_event(IFCApprovalResponse, waiter_id=waiter, waiter_event=event,
                                          requirements={"waiter_id": waiter})
        review, problem = read_review(answer.as_answer(), request["digest"])
        if review is not None:
            ifc.tracker.record_approval(run, check, review, kwargs, answer.as_answer())
            return review
    raise IFCViolation(check)  # no usable answer after many tries: refused


def guard_tool(tool: BaseTool, ifc: IFCEventHandler, *,
               on_violation: Literal["error", "approve", "cancel"] = "error") -> FunctionTool:
    """`tool` behind a flow check, with the same name, description and schema.

    `ifc` is the attached `IFCEventHandler`, which knows the label of the output that made the
    call (bound by the agent's tool-call id). When the label does not flow to the tool's sink:

    - ``"error"``: the agent gets an error result carrying the `IFCViolation`; the run goes on;
    - ``"approve"``: the run pauses on an `IFCApprovalRequired` event (the call with its
      arguments, label, sink, reason and digest); the caller answers with
      ``handler.ctx.send_event(IFCApprovalResponse(waiter_id=..., digest=..., decision=...))``.
      An answer that does not echo this very call's digest is not taken: the reviewer is asked
      again. An edited call is checked again before it runs. Every answer is audited;
    - ``"cancel"``: an `IFCViolationEvent` goes to the event stream (and the call is refused);
      `raise_on_violation(handler)` cancels the run on that event and raises. A tool cannot end a
      workflow run by itself: agents turn every exception into an error result, a
      `BaseException` hangs the run, and workflows do not support cancelling from inside a step.

    A tool the policy gives no sink is refused here (undeclared sinks are closed).
    """
    if on_violation not in ("error", "approve", "cancel"):
        raise ValueError("on_violation: use 'error', 'approve' or 'cancel'")
    inner = adapt_to_async_tool(tool)
    name = tool.metadata.get_name()
    ifc.tracker.policy.check_guarded([name])

    async def guarded(ctx: Context, **kwargs: Any) -> Any:
        ifc.raise_for_errors()  # a run whose audit failed does not go on
        run, call_id = ifc.current_run(), ifc.current_tool_call()
        check = ifc.tracker.check_call(run, name, kwargs, call_id)
        if not check.allowed:
            if on_violation != "approve":
                if on_violation == "cancel":
                    ctx.write_event_to_stream(IFCViolationEvent(check=check, **_event_fields(check)))
                raise IFCViolation(check)
            review = await _review(ctx, ifc, run, check, kwargs)
            if review.kind == "respond":
                return review.message or ""
            if review.kind == "reject":
                raise IFCViolation(check)
            if review.kind == "edit":
                edited = ifc.tracker.check_edit(run, check, kwargs, review.args or {})
                if not edited.allowed:
                    raise IFCViolation(edited)
                kwargs = dict(review.args or {})
        output = await inner.acall(**kwargs)
        return output.raw_output

    return FunctionTool.from_defaults(async_fn=guarded, tool_metadata=tool.metadata)


def guard_tools(tools: Sequence[BaseTool], ifc: IFCEventHandler, *,
                on_violation: Literal["error", "approve", "cancel"] = "error") -> list[FunctionTool]:
    """`guard_tool` for every tool of an agent (a `FunctionAgent`'s list), once the policy is
    checked against all of them: every tool it names must be among `tools` ("did you mean
    ...?"), and every tool needs a sink."""
    names = [t.metadata.get_name() for t in tools]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"guard_tools: tool names must be unique, got {names}")
    ifc.tracker.policy.check_tools(names)
    return [guard_tool(t, ifc, on_violation=on_violation) for t in tools]


async def raise_on_violation(handler: WorkflowHandler) -> Any:
    """Await a run, streaming its events; on the first `IFCViolationEvent`, cancel it and raise."""
    async for event in handler.stream_events():
        if isinstance(event, IFCViolationEvent):
            await handler.cancel_run()
            raise IFCViolation(event.check)
    return await handler
