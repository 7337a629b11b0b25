"""LlamaIndex adapter for llm-ifc: event handler, labelled retriever, tool guard.

Not built yet (issue 4). The engine it will translate to is `ifc_core`.
"""

__all__: list[str] = []
