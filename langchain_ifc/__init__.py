"""LangChain adapter for llm-ifc: callback, labelled retriever, tool guard, agent middleware.

Not built yet (issue 3). The engine it will translate to is `ifc_core`.
"""

__all__: list[str] = []
