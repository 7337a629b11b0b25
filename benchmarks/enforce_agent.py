"""Cost of an enforce-mode agent step against a plain step (issue 11), on the embedded model, CPU.

The agent's model acts like `scenario_action` (its actions are computed from its context), and
pays for each call what the embedded model pays to generate that answer: a real greedy
generation of as many tokens from the same prompt. A plain step is one such call; an
enforce-mode step adds the label search and any regeneration. Several scenarios, some where parts
are withheld and one where none is. One run, idle machine:

    .venv/bin/python benchmarks/enforce_agent.py
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage

from ifc_core import HFScorer, LabelledSource, PermissivePropagator, render_tool_calls
from ifc_core.demo import (DOCUMENTS, LATTICE, MIXED, POLICY, QUERY_LABEL, REQUESTS, print_table,
                                scenario_store)
from langchain_ifc import IFCMiddleware, labelled_retriever_tool
from langchain_ifc._demo import ContextAgentModel, chroma_retriever, hr_agent


class PayingModel(ContextAgentModel):
    """`ContextAgentModel` that also generates its answer's length with the embedded model."""

    scorer: Any = None
    seconds: list = []

    def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = super()._generate(messages, stop, run_manager, **kwargs)
        answer = result.generations[0].message
        prompt = self.scorer.encode(self.scorer.tokenizer.apply_chat_template(
            [{"role": "user", "content": "\n\n".join(str(m.content) for m in messages)}],
            tokenize=False, add_generation_prompt=True))
        n = max(len(self.scorer.encode(render_tool_calls(str(answer.content), answer.tool_calls))), 1)
        self.scorer.generate(prompt, max_new_tokens=n)  # what generating this answer costs
        self.seconds.append(time.perf_counter() - start)
        return result


def run(request: Any, store: Any, scorer: HFScorer, mode: str | None) -> tuple[float, float, int, int]:
    """(seconds in model calls, seconds of the whole email step, model calls, regenerations)."""
    model = PayingModel(request=request, prompts=[], scorer=scorer, seconds=[])
    middleware = [] if mode is None else [IFCMiddleware(PermissivePropagator(scorer), POLICY,
                                                        query_label=QUERY_LABEL, mode=mode)]
    agent, _ = hr_agent(store, request, middleware=middleware, model=model)
    start = time.perf_counter()
    agent.invoke({"messages": [{"role": "user", "content": request.text}]})
    total = time.perf_counter() - start
    regenerations = 0
    if middleware:
        decision = middleware[0].tracker.decision_for_call("call_email") or next(
            d for _, st in middleware[0].tracker.runs() for d in st.decisions if d.mode == mode)
        regenerations = len(decision.regenerations)
    return sum(model.seconds), total, len(model.seconds), regenerations


def public_store() -> Any:
    """A store with the public FAQ only: an enforce step then withholds nothing."""
    from ifc_core.chroma import LabelledStore
    import secrets
    import uuid

    store = LabelledStore.open(f"bench-{uuid.uuid4().hex[:8]}", LATTICE, key=secrets.token_bytes(32))
    store.add([d for d in DOCUMENTS if d.id == "faq"])
    return store


def main(repeats: int = 3) -> None:
    scorer = HFScorer.load()
    cases = [("FAQ email (parts withheld)", REQUESTS[0], scenario_store()),
             ("salary email refused (parts withheld)", REQUESTS[1], scenario_store()),
             ("mixed request, sink retry", MIXED, scenario_store()),
             ("FAQ email, nothing to withhold", REQUESTS[0], public_store())]
    rows = [("scenario", "plain run s", "enforce run s", "ratio", "model calls plain/enforce", "regenerations")]
    for name, request, store in cases:
        plain = [run(request, store, scorer, None) for _ in range(repeats)]
        enforced = [run(request, store, scorer, "enforce") for _ in range(repeats)]
        p, e = statistics.median(r[1] for r in plain), statistics.median(r[1] for r in enforced)
        rows.append((name, f"{p:.2f}", f"{e:.2f}", f"{e / p:.2f}x", f"{plain[0][2]}/{enforced[0][2]}",
                     enforced[0][3]))
    print(f"Model: {scorer.model_id} on {scorer.device}; median of {repeats} runs of the whole agent request")
    print_table(rows, sys.stdout)
    print("\nplain: the same agent with no middleware (its model calls pay a real generation each);"
          "\nenforce: IFCMiddleware(mode='enforce'): label search on every model call, regeneration when"
          "\nparts are withheld, one more when a call's label exceeds its tool's sink.")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
