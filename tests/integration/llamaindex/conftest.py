import pytest

from ifc_core import PermissivePropagator
from ifc_core.demo import POLICY, QUERY_LABEL, scenario_store
from llamaindex_ifc import IFCEventHandler


@pytest.fixture(scope="module")
def store():
    return scenario_store()


@pytest.fixture
def ifc(scorer):
    """An attached handler, detached after the test (the dispatcher is process-global)."""
    handler = IFCEventHandler.create(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL).attach()
    yield handler
    handler.detach()


from ..langchain.conftest import handler  # noqa: E402,F401  (the parity tests drive both adapters)
