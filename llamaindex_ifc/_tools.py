"""`guard_tool`: label-checked tools for LlamaIndex agents and workflows.

(No `from __future__ import annotations` here: LlamaIndex finds the `ctx: Context` parameter it
must inject by its real annotation, not a string.)
"""


import hashlib
import json
from typing import Any, Literal

from llama_index.core.tools import BaseTool, FunctionTool, adapt_to_async_tool
from pydantic import Field
from llama_index.core.workflow import Context
from workflows.events import Event, HumanResponseEvent, InputRequiredEvent
from workflows.handler import WorkflowHandler

from ifc_core import FlowCheck, IFCViolation

from ._events import IFCEventHandler

__all__ = ["guard_tool", "raise_on_violation", "IFCApprovalRequired", "IFCApprovalResponse", "IFCViolationEvent"]


class IFCApprovalRequired(InputRequiredEvent):
    """Asks a human whether a refused call may go ahead (answer with `IFCApprovalResponse`)."""

    waiter_id: str
    tool: str
    label: Any
    sink: Any
    reason: str


class IFCApprovalResponse(HumanResponseEvent):
    """The human's answer to `IFCApprovalRequired` (same `waiter_id`)."""

    waiter_id: str
    approve: bool


class IFCViolationEvent(Event):
    """Written to the event stream when a call is refused (`check` holds the full verdict)."""

    tool: str
    label: Any
    sink: Any
    reason: str
    check: Any = Field(default=None, exclude=True)


def _event_fields(check: FlowCheck) -> dict[str, Any]:
    return {"tool": check.tool, "label": check.label.to_json(), "sink": check.sink.to_json(), "reason": check.reason}


def guard_tool(tool: BaseTool, ifc: IFCEventHandler, *,
               on_violation: Literal["error", "approve", "cancel"] = "error") -> FunctionTool:
    """`tool` behind a flow check, with the same name, description and schema.

    `ifc` is the attached `IFCEventHandler`, which knows the label of the output that made the
    call. When the label does not flow to the tool's sink:

    - ``"error"``: the agent gets an error result carrying the `IFCViolation`; the run goes on;
    - ``"approve"``: the run pauses on an `IFCApprovalRequired` event (labels, sink, reason); the
      caller answers with ``handler.ctx.send_event(IFCApprovalResponse(waiter_id=..., approve=...))``;
    - ``"cancel"``: an `IFCViolationEvent` goes to the event stream (and the call is refused);
      `raise_on_violation(handler)` cancels the run on that event and raises. A tool cannot end a
      workflow run by itself: agents turn every exception into an error result, a
      `BaseException` hangs the run, and workflows do not support cancelling from inside a step.
    """
    if on_violation not in ("error", "approve", "cancel"):
        raise ValueError("on_violation: use 'error', 'approve' or 'cancel'")
    inner = adapt_to_async_tool(tool)
    name = tool.metadata.get_name()

    async def guarded(ctx: Context, **kwargs: Any) -> Any:
        ifc.raise_for_errors()  # a run whose audit failed does not go on
        run, call_id = ifc.current_run(), ifc.current_tool_call()
        check = ifc.tracker.check_call(run, name, kwargs, call_id)
        if not check.allowed:
            if on_violation == "approve":
                # the step runs again once the answer arrives: the waiter id must be the same then
                waiter = "ifc-" + hashlib.sha256(json.dumps([str(run), call_id, name, kwargs], sort_keys=True,
                                                            default=str).encode()).hexdigest()[:24]
                answer = await ctx.wait_for_event(
                    IFCApprovalResponse, waiter_id=waiter,
                    waiter_event=IFCApprovalRequired(waiter_id=waiter, **_event_fields(check)),
                    requirements={"waiter_id": waiter})
                ifc.tracker.record_approval(run, check, answer.approve)
                if not answer.approve:
                    raise IFCViolation(check)
            else:
                if on_violation == "cancel":
                    ctx.write_event_to_stream(IFCViolationEvent(check=check, **_event_fields(check)))
                raise IFCViolation(check)
        output = await inner.acall(**kwargs)
        return output.raw_output

    return FunctionTool.from_defaults(async_fn=guarded, tool_metadata=tool.metadata)


async def raise_on_violation(handler: WorkflowHandler) -> Any:
    """Await a run, streaming its events; on the first `IFCViolationEvent`, cancel it and raise."""
    async for event in handler.stream_events():
        if isinstance(event, IFCViolationEvent):
            await handler.cancel_run()
            raise IFCViolation(event.check)
    return await handler
