"""LangChain's own standard test suites (langchain-tests), run on our retriever and chat model."""

import functools

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from ifc_core.demo import LATTICE, scenario_store
from langchain_ifc import IFCCallbackHandler, IFCChatModel, IFCRetriever

from .fakes import ToolUser


@functools.cache
def _store():
    return scenario_store()


def _from_chroma(**kwargs):
    from langchain_chroma import Chroma

    store = _store()
    return IFCRetriever.from_chroma(Chroma(client=store.client, collection_name=store.collection.name), store, **kwargs)


class TestIFCRetrieverFromStore(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        return lambda **kw: IFCRetriever.from_store(_store(), **kw)

    @property
    def retriever_constructor_params(self):
        return {"clearance": LATTICE.top, "k": 2}

    @property
    def retriever_query_example(self):
        return "When is the office open?"


class TestIFCRetrieverFromChroma(TestIFCRetrieverFromStore):
    @property
    def retriever_constructor(self):
        return _from_chroma


def test_unknown_arguments_are_refused():
    retriever = IFCRetriever.from_store(_store(), k=2)
    with pytest.raises(TypeError, match="bogus"):
        retriever.invoke("office", bogus="x")
    with pytest.raises(ValueError, match="k must be a positive"):
        retriever.invoke("office", k=0)
    assert len(retriever.invoke("office", k=1)) == 1


class _IFCChatModelParams:
    """`IFCChatModel` around `ToolUser`, with a handler on the model itself (so that every call in
    the suites is labelled by the real scorer, not answered as ⊤ for want of a handler)."""

    @property
    def chat_model_class(self):
        return IFCChatModel

    @property
    def chat_model_params(self):
        from ifc_core import HFScorer, PermissivePropagator, Policy
        from ifc_core.demo import QUERY_LABEL

        handler = IFCCallbackHandler(PermissivePropagator(HFScorer.embedded()),
                                     Policy(LATTICE, default_sink=LATTICE.top), query_label=QUERY_LABEL)
        return {"inner": ToolUser(), "ifc": handler, "callbacks": [handler]}

    @property
    def has_tool_calling(self):
        return True

    @property
    def has_tool_choice(self):
        return True

    @property
    def has_structured_output(self):
        return True

    @property
    def returns_usage_metadata(self):
        return True

    @property
    def supports_image_inputs(self):
        return False


class TestIFCChatModelUnit(_IFCChatModelParams, ChatModelUnitTests):
    pass


@pytest.mark.model
class TestIFCChatModelIntegration(_IFCChatModelParams, ChatModelIntegrationTests):
    pass
