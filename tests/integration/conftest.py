import pytest

from ifc_core import HFScorer, PermissivePropagator


@pytest.fixture(scope="session")
def scorer():
    """The real embedded model (SmolLM2-135M-Instruct), loaded once for the whole session."""
    return HFScorer.embedded()


@pytest.fixture(scope="session")
def permissive(scorer):
    return PermissivePropagator(scorer)


@pytest.fixture(scope="module")
def store():
    """The HR scenario's four documents in a fresh labelled Chroma collection."""
    from ifc_core.demo import scenario_store

    return scenario_store()


@pytest.fixture
def handler(scorer):
    """A LangChain callback handler on the scenario's policy."""
    from ifc_core.demo import POLICY, QUERY_LABEL
    from langchain_ifc import IFCCallbackHandler

    return IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL)
