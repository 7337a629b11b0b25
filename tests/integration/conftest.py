import pytest

from ifc_core import HFScorer, PermissivePropagator


@pytest.fixture(scope="session")
def scorer():
    """The real embedded model (SmolLM2-135M-Instruct), loaded once for the whole session."""
    return HFScorer.embedded()


@pytest.fixture(scope="session")
def permissive(scorer):
    return PermissivePropagator(scorer)
