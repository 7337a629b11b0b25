"""`ifc eval`: label quality and cost of every propagator on the same cases, and a report.

    from ifc_core.eval import EvalConfig, run_eval, write_report

    result = run_eval(EvalConfig.quick())
    write_report(result, "report/", command="python ...")

Datasets: synthetic facts (`synthetic_cases`), conflicting news sources (`news_cases`),
AgentDojo replayed offline (`agentdojo_cases`, needs the `eval` extra), and the hard groups of
issue 17 (`hard_cases`, `model_written_cases`) with the exhaustive `ReferencePropagator`. The peer comparison runs
ContextCite (also in the `eval` extra).
"""

from ._cases import EvalCase
from ._hard import hard_cases
from ._hard_eval import ReferencePropagator
from ._metrics import Metrics, leaks, retains, summarise
from ._news import news_cases
from ._report import write_report
from ._runner import EvalConfig, EvalResult, run_eval, supported_lambda
from ._synthetic import synthetic_cases
from ._written import model_written_cases

__all__ = [
    "EvalCase",
    "EvalConfig",
    "EvalResult",
    "Metrics",
    "ReferencePropagator",
    "hard_cases",
    "leaks",
    "model_written_cases",
    "news_cases",
    "retains",
    "run_eval",
    "summarise",
    "supported_lambda",
    "synthetic_cases",
    "write_report",
]
