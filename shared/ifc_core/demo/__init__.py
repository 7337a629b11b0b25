"""The HR scenario of the demos and end-to-end tests, and `ifc demo` (framework-free).

Four documents (an internal HR handbook page, a public FAQ, a confidential salary table and an
untrusted web page carrying an injected instruction), a policy whose `send_email` accepts only
public, trusted content, and the requests the demos and tests send to each adapter's agent.
"""

from ._run import run_demo
from ._scenario import (DOCUMENTS, LATTICE, MIXED, Outcome, POLICY, QUERY_LABEL, REQUESTS, Request, enforce_table, print_table, scenario_action, scenario_store, short)

__all__ = [
    "DOCUMENTS",
    "LATTICE",
    "MIXED",
    "Outcome",
    "POLICY",
    "QUERY_LABEL",
    "REQUESTS",
    "Request",
    "enforce_table",
    "print_table",
    "run_demo",
    "scenario_action",
    "scenario_store",
    "short",
]
