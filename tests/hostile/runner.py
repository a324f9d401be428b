"""Run the real CLI in a child process and check the promises made for hostile input."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    peak_mb: float  # the child's peak resident memory (ru_maxrss)


def run_cli(argv: list[str], cwd: Path, env: dict | None = None, timeout: float = 120) -> Result:
    """``python -m unetkit *argv`` in ``cwd``; the peak memory is that child's own (os.wait4)."""
    child_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default", **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "unetkit", *argv], cwd=cwd, stdout=out, stderr=err, env=child_env
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            proc.returncode = 0  # reaped by wait4; keeps Popen from waiting again
        out.seek(0)
        err.seek(0)
        return Result(
            os.waitstatus_to_exitcode(status),
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            usage.ru_maxrss / 1024,
        )


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or the link target) of everything under ``root``, links not followed."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out
