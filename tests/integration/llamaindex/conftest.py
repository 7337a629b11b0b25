import pytest

from ifc_core import PermissivePropagator
from ifc_core.demo import POLICY, QUERY_LABEL
from llamaindex_ifc import IFCEventHandler


@pytest.fixture
def ifc(scorer):
    """An attached handler, detached after the test (the dispatcher is process-global)."""
    handler = IFCEventHandler.create(PermissivePropagator(scorer), POLICY, query_label=QUERY_LABEL).attach()
    yield handler
    handler.detach()
