"""`guard_tool`: a label-checked `BaseTool` for chains, `ToolNode`, and anything taking a tool."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict

from ifc_core import ConfigurationError, IFCViolation

from ._callback import IFCCallbackHandler

__all__ = ["GuardedTool", "guard_tool", "guard_tools"]


class GuardedTool(BaseTool):
    """`inner` behind a flow check; same name, description and schema as `inner`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    ifc: IFCCallbackHandler
    on_violation: Literal["error", "raise"] = "error"

    def _claimed(self, config: RunnableConfig | None) -> RunnableConfig:
        """`config` with a run id this guard registered with its handler: the handler then leaves
        the check of this run to the guard (so a refusal is the guard's result, not an exception
        raised before the tool starts)."""
        config = ensure_config(config)
        run_id = config.get("run_id") or uuid.uuid4()
        self.ifc.guard_run(run_id)
        return {**config, "run_id": run_id}

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return super().invoke(input, self._claimed(config), **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await super().ainvoke(input, self._claimed(config), **kwargs)

    def _run(self, *args: Any, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> Any:
        # The handler saw this run start (it must be attached to the run); without it no label is
        # known and the call is checked as ⊤.
        key = self.ifc.key_of(run_manager.run_id) if run_manager else None
        check = self.ifc.tracker.check_call(key, self.name, kwargs, self.ifc.tool_call_of(run_manager))
        if not check.allowed:
            violation = IFCViolation(check)
            if self.on_violation == "raise":
                raise violation
            raise ToolException(str(violation))
        child = run_manager.get_child() if run_manager else None
        return self.inner.invoke(kwargs, config=self._claimed({"callbacks": child}))  # checked already


def guard_tool(tool: BaseTool, ifc: IFCCallbackHandler, *, on_violation: Literal["error", "raise"] = "error") -> GuardedTool:
    """Wrap `tool` so that each call is checked against `ifc`'s policy before it runs.

    `ifc` is the `IFCCallbackHandler` attached to the run (it knows the label of the output that
    produced the call). ``on_violation="error"`` returns an error result the model can read (the
    chain goes on); ``"raise"`` raises `IFCViolation`. A tool the policy gives no sink is refused
    here (undeclared sinks are closed), with the closest name the policy has.
    """
    if on_violation not in ("error", "raise"):
        raise ConfigurationError("guard_tool.on_violation: use 'error' or 'raise'")
    ifc.tracker.policy.check_guarded([tool.name])
    return GuardedTool(
        name=tool.name, description=tool.description, args_schema=tool.args_schema,
        return_direct=tool.return_direct, response_format=tool.response_format,
        inner=tool, ifc=ifc, on_violation=on_violation, handle_tool_error=on_violation == "error",
    )


def guard_tools(tools: Sequence[BaseTool], ifc: IFCCallbackHandler, *,
                on_violation: Literal["error", "raise"] = "error") -> list[GuardedTool]:
    """`guard_tool` for every tool of an agent, once the policy is checked against all of them:
    every tool it names must be among `tools` ("did you mean ...?"), and every tool needs a sink."""
    ifc.tracker.policy.check_tools([t.name for t in tools])
    return [guard_tool(t, ifc, on_violation=on_violation) for t in tools]
