"""One test against a real `chroma run` server on 127.0.0.1, started and stopped here."""

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ifc_core.demo import DOCUMENTS, LATTICE
from ifc_core.chroma import LabelledStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    proc = subprocess.Popen([exe, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "srv")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}")
            time.sleep(0.2)
        else:
            pytest.fail("chroma run did not open its port in 60 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_labelled_store_over_http(chroma_server):
    store = LabelledStore.open("hr-docs", LATTICE, url=chroma_server)
    store.add(DOCUMENTS)
    public = LATTICE.label({"conf": "public", "integrity": "trusted"})
    got = store.query("When is the office open?", public, k=4)
    assert [s.id for s in got.sources] == ["faq"]
    again = LabelledStore.open("hr-docs", LATTICE, url=chroma_server)  # reopens the persisted collection
    assert again.collection.count() == 4


def test_in_memory_store_still_works_after_an_http_client():
    # Regression: chromadb.HttpClient used to rewrite a Settings object we shared between clients,
    # so every later in-memory store tried to reach the (now stopped) server.
    store = LabelledStore.open("after-http", LATTICE)
    store.add(DOCUMENTS[:1])
    assert store.collection.count() == 1
