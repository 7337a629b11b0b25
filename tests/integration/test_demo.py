"""`ifc demo` prints the scenario with the labels it is meant to show."""

import io

import pytest

from ifc_core.demo import run_demo

pytestmark = pytest.mark.model


def test_demo_shows_permissive_labels_beside_conservative():
    out = io.StringIO()
    run_demo(out=out)
    rows = {" ".join(line.split()) for line in out.getvalue().splitlines()}

    def row(answer):
        return next(r for r in rows if r.startswith(answer))

    assert "Friday. confidential/untrusted public/trusted faq " in row("The office is open")
    assert "year. confidential/untrusted internal/trusted handbook, faq " in row("Employees get")
    assert "year. confidential/untrusted confidential/trusted " in row("Alice Smith earns")
    assert "example. confidential/untrusted public/untrusted " in row("Please email")
    assert "label: public/trusted (conservative: confidential/untrusted)" in rows
