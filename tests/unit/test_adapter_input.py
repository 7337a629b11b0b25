"""Bad input to the adapters' constructors: refused up front with an `IFCError` whose message
starts with the field and names the fix, the same way in both adapters (no model)."""

import pytest
from langchain_core.tools import tool as lc_tool
from llama_index.core.tools import FunctionTool

from ifc_core import Chain, ConfigurationError, ConfigurationTypeError, IFCError, Policy

CONF = Chain(["public", "secret"])
POLICY = Policy(CONF, sinks={"send_email": "public"})


def refused(call, error, field):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, IFCError) and str(info.value).startswith(field), str(info.value)


@lc_tool
def send_email(to: str) -> str:
    """Send an email."""
    return "sent"


def lc_handler(**kw):
    from langchain_ifc import IFCCallbackHandler

    return IFCCallbackHandler("conservative", POLICY, query_label="public", **kw)


def li_handler():
    from llamaindex_ifc import IFCEventHandler

    return IFCEventHandler.create("conservative", POLICY, query_label="public")


def test_langchain_constructors_name_the_field():
    from langchain_ifc import IFCMiddleware, IFCRetriever, guard_tool, labelled_retriever_tool

    mw = lambda **kw: IFCMiddleware("conservative", POLICY, query_label="public", **kw)  # noqa: E731
    refused(lambda: mw(on_violation="warn"), ConfigurationError, "IFCMiddleware.on_violation")
    refused(lambda: mw(mode="guard"), ConfigurationError, "IFCMiddleware.mode")
    refused(lambda: mw(sink_retry="yes"), ConfigurationError, "IFCMiddleware.sink_retry")
    refused(lambda: mw(system_prompts="You are helpful."), ConfigurationError, "system_prompts")
    refused(lambda: lc_handler(enforce="false"), ConfigurationError, "enforce")
    refused(lambda: lc_handler(request_keys="question"), ConfigurationError, "request_keys")
    refused(lambda: guard_tool(lambda to: to, lc_handler()), ConfigurationTypeError, "guard_tool.tool")
    refused(lambda: guard_tool(send_email, object()), ConfigurationTypeError, "guard_tool.ifc")
    refused(lambda: guard_tool(send_email, lc_handler(), on_violation="warn"), ConfigurationError,
            "guard_tool.on_violation")
    refused(lambda: labelled_retriever_tool(object(), "search", "Search."), ConfigurationTypeError,
            "labelled_retriever_tool.retriever")
    refused(lambda: IFCRetriever.from_store({"collection": "docs"}), ConfigurationTypeError, "IFCRetriever.from_store")


def test_llamaindex_constructors_name_the_field():
    from llamaindex_ifc import IFCRetriever, guard_tool, labelled_retriever_tool

    email = FunctionTool.from_defaults(fn=lambda to: "sent", name="send_email", description="Send an email.")
    refused(lambda: guard_tool(send_email.func, li_handler()), ConfigurationTypeError, "guard_tool.tool")
    refused(lambda: guard_tool(email, object()), ConfigurationTypeError, "guard_tool.ifc")
    refused(lambda: guard_tool(email, li_handler(), on_violation="warn"), ConfigurationError, "guard_tool.on_violation")
    refused(lambda: labelled_retriever_tool(object(), "search", "Search."), ConfigurationTypeError,
            "labelled_retriever_tool.retriever")
    refused(lambda: IFCRetriever.from_store({"collection": "docs"}), ConfigurationTypeError, "IFCRetriever.from_store")

