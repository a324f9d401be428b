"""Start `unetkit serve` in a child process and wait until it is ready (tests, benchmarks, scripts)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from unetkit.ports import free_port


@contextlib.contextmanager
def serve_process(
    model: str | Path,
    *extra: str,
    host: str = "127.0.0.1",
    startup_s: float = 90.0,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """`python -m unetkit serve --model MODEL` on ``host`` and a free port with ``extra`` flags.

    Yields the base URL once ``/readyz`` answers 200; stops the process afterwards. If the server exits or is
    not ready within ``startup_s`` seconds, RuntimeError carries its output.
    """
    import httpx

    port = free_port(host)
    cmd = [
        sys.executable,
        "-m",
        "unetkit",
        "serve",
        "--model",
        str(model),
        "--host",
        host,
        "--port",
        str(port),
    ]
    cmd += list(extra)
    url = f"http://{host}:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            deadline = time.monotonic() + startup_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}:\n{output()}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready after {startup_s} s:\n{output()}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
