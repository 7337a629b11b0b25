"""The public surface of each package: `__all__` sorted, complete and importable (httpx's
test_exported_members), and the adapters use only public engine names."""

import importlib
import pathlib
import re
import types

import pytest

PACKAGES = ["ifc_core", "ifc_core.demo", "ifc_core.scoring", "ifc_core.eval", "langchain_ifc", "llamaindex_ifc"]


@pytest.mark.parametrize("name", PACKAGES)
def test_exported_members(name):
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for member in exported:
        assert hasattr(module, member), f"{name}.{member} is in __all__ but not defined"
    public = {k for k, v in vars(module).items() if not k.startswith("_") and not isinstance(v, types.ModuleType)
              and getattr(v, "__module__", name).startswith(name.split(".")[0])}
    assert public <= set(exported), f"{name} has public names missing from __all__: {sorted(public - set(exported))}"


@pytest.mark.parametrize("adapter", ["langchain_ifc", "llamaindex_ifc"])
def test_adapters_import_only_public_engine_names(adapter):
    root = pathlib.Path(importlib.import_module(adapter).__file__).parent
    for path in root.glob("*.py"):
        private = re.findall(r"^\s*(?:from|import)\s+(ifc_core\.(?:\w+\.)*_\w+)", path.read_text(), re.M)
        assert not private, f"{path.name} imports private engine modules: {private}"
