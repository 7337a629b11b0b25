"""A real vLLM server (the embedded model, CPU build from .venv-vllm), started once per session.

The server's engine is bound to one core by vLLM's default on this 2-core machine (the other is
left to its HTTP front end and to this process); docs/deployment.md has the settings.
"""

import os
from pathlib import Path

import pytest

from ifc_core import VLLMScorer
from ifc_core.scoring.serve import VLLMServer

ROOT = Path(__file__).resolve().parents[3]


def vllm_python() -> Path:
    path = Path(os.environ.get("IFC_VLLM_PYTHON") or ROOT / ".venv-vllm" / "bin" / "python")
    if not path.exists():
        pytest.fail(f"{path} is missing: the served-scorer tests need the vLLM venv; `make test` builds it "
                    "(or `make .venv-vllm/.bootstrapped`)")
    return path


def start_server(tmp_path_factory, served_name: str = "smollm2") -> VLLMServer:
    log = tmp_path_factory.mktemp("vllm") / f"{served_name}.log"
    server = VLLMServer(vllm_python(), served_name=served_name, log=log).start()
    try:
        return server.wait()
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """The embedded model served as "smollm2"; stopped by its own PID at the end of the session."""
    server = start_server(tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def served(vllm_server):
    """A VLLMScorer on the session's server (tokenizing on the server)."""
    with VLLMScorer(vllm_server.url, model="smollm2") as scorer:
        yield scorer
