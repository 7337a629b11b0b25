import pytest

from ifc_core import PermissivePropagator
from ifc_core.demo import POLICY, QUERY_LABEL
from langchain_ifc import IFCCallbackHandler
from ifc_core.demo import scenario_store


@pytest.fixture(scope="module")
def store():
    return scenario_store()


@pytest.fixture
def handler(scorer):
    """A LangChain callback handler on the scenario's policy."""
    return IFCCallbackHandler(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL)
