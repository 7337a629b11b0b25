"""llm-ifc as an AgentDojo pipeline element (needs the `eval` extra: ``pip install llm-ifc[eval]``).

`IFCToolsExecutor` guards an AgentDojo tool executor (a `BasePipelineElement`, by default
AgentDojo's own `ToolsExecutor`): before the tools of an assistant message run, the message is
labelled by the tracker's propagator from the user's request and the tool results seen so far
(each result labelled by the policy, item by item where the policy registers a labeller for that
tool), and every call is checked against the policy with its own label (per-argument labels
where the propagator scores them). A call the policy refuses does not run: its tool message
carries the reason as its error, as AgentDojo reports a failed call. Any error while labelling
blocks the message's calls (fail closed).

Use it in place of the `ToolsExecutor` of a pipeline, and run AgentDojo's own
`benchmark_suite_with_injections` for utility, utility under attack and attack success::

    guard = IFCToolsExecutor(FlowTracker("permissive", policy, query_label="trusted"))
    loop = ToolsExecutionLoop([guard, llm])
    pipeline = AgentPipeline([SystemMessage(...), InitQuery(), llm, loop])
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ._errors import ConfigurationError
from ._tracker import FlowTracker

__all__ = ["RUN_KEY", "IFCToolsExecutor"]

RUN_KEY = "llm_ifc_run"  # the key of the tracker's run, kept in AgentDojo's extra_args


def _agentdojo() -> Any:
    try:
        from agentdojo.agent_pipeline import BasePipelineElement, ToolsExecutor
        from agentdojo.types import ChatToolResultMessage, get_text_content_as_str, text_content_block_from_string
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ConfigurationError("the AgentDojo pipeline element needs the `eval` extra: "
                                 "pip install 'llm-ifc[eval]'") from exc
    return BasePipelineElement, ToolsExecutor, ChatToolResultMessage, get_text_content_as_str, \
        text_content_block_from_string


class _Recording:
    """A functions runtime that keeps each call's structured result (for the policy's labeller)."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self.results: list[tuple[str, Any]] = []  # (function, result), in the order they ran

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def run_function(self, env: Any, function: str, kwargs: Any, raise_on_error: bool = False) -> tuple[Any, Any]:
        result, error = self._runtime.run_function(env, function, kwargs, raise_on_error=raise_on_error)
        self.results.append((function, result))
        return result, error


_Base = _agentdojo()[0]


class IFCToolsExecutor(_Base):  # type: ignore[misc,valid-type]
    """An AgentDojo pipeline element: `executor` (default: AgentDojo's `ToolsExecutor`) behind
    the policy check of `tracker` (a `FlowTracker`: its propagator, policy and query label).

    Each pipeline run is a run of the tracker, keyed by ``extra_args["llm_ifc_run"]`` (set on
    the first call of a run). `checks` keeps every `FlowCheck` made, in order."""

    def __init__(self, tracker: FlowTracker, executor: Any = None, *, name: str | None = None) -> None:
        base, tools_executor, *_ = _agentdojo()
        if not isinstance(tracker, FlowTracker):
            raise ConfigurationError(f"tracker: give a FlowTracker, not {type(tracker).__name__}")
        executor = tools_executor() if executor is None else executor
        if not isinstance(executor, base):
            raise ConfigurationError(f"executor: give an AgentDojo BasePipelineElement, not {type(executor).__name__}")
        self.tracker, self.executor, self.name = tracker, executor, name or "llm-ifc"
        self.checks: list[Any] = []

    def query(self, query: str, runtime: Any, env: Any = None, messages: Sequence[Any] = (),
              extra_args: dict | None = None) -> tuple[str, Any, Any, Sequence[Any], dict]:
        """Label the last assistant message's tool calls, run the ones the policy allows with the
        executor, and answer the others with the reason they were blocked."""
        _, _, tool_message, as_text, block = _agentdojo()
        extra = dict(extra_args or {})
        if env is None:
            from agentdojo.functions_runtime import EmptyEnv

            env = EmptyEnv()
        last = messages[-1] if messages else None
        if last is None or last["role"] != "assistant" or not last.get("tool_calls"):
            return self.executor.query(query, runtime, env, messages, extra)
        key = extra.get(RUN_KEY)
        if key is None:
            key = extra[RUN_KEY] = f"agentdojo-{uuid.uuid4().hex}"
            self.tracker.set_query(key, query)
        calls = list(last["tool_calls"])
        ids = [c.id or f"call-{uuid.uuid4().hex[:12]}" for c in calls]
        verdicts = self._check(key, as_text(last.get("content") or []), calls, ids)
        allowed = [c for c, v in zip(calls, verdicts) if v is None]
        results: dict[int, Any] = {}
        if allowed:
            recording = _Recording(runtime)
            head = {**last, "tool_calls": allowed}
            _, _, env, out, extra = self.executor.query(query, recording, env, [*messages[:-1], head], extra)
            answers = list(out[len(messages):])
            if len(answers) != len(allowed):
                raise RuntimeError(f"the executor answered {len(answers)} of {len(allowed)} calls")
            ran = list(recording.results)
            for call, answer in zip(allowed, answers):
                # the executor runs the calls in order, skipping those it refuses (an unknown tool)
                raw = ran.pop(0)[1] if ran and ran[0][0] == call.function else None
                index = next(i for i, c in enumerate(calls) if c is call)
                results[index] = answer
                self._observe(key, call.function, as_text(answer["content"]), ids[index], raw)
        replies = []
        for i, call in enumerate(calls):
            if i in results:
                replies.append(results[i])
            else:
                replies.append(tool_message(role="tool", content=[block("")], tool_call_id=call.id, tool_call=call,
                                            error=f"llm-ifc blocked this call: {verdicts[i]}"))
        return query, runtime, env, [*messages, *replies], extra

    def _check(self, key: str, content: str, calls: Sequence[Any], ids: Sequence[str]) -> list[str | None]:
        """None for each call the policy allows, else the reason it is blocked (fails closed)."""
        try:
            shown = [{"name": c.function, "args": dict(c.args), "id": i} for c, i in zip(calls, ids)]
            self.tracker.label_output(key, content, shown)
            verdicts: list[str | None] = []
            for call, i in zip(calls, ids):
                check = self.tracker.check_call(key, call.function, dict(call.args), i)
                self.checks.append(check)
                verdicts.append(None if check.allowed else check.reason)
            return verdicts
        except Exception as exc:  # any error in labelling blocks the calls
            return [f"labelling failed ({type(exc).__name__}: {exc}); blocked (fail closed)"] * len(calls)

    def _observe(self, key: str, tool: str, text: str, result_id: str, raw: Any) -> None:
        """A tool result enters the run: labelled by the policy (its labeller gets `raw`)."""
        self.tracker.add_tool_result(key, tool, text, result_id, result=raw)
