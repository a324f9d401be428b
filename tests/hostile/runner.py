"""Run the real CLI in a child process and check the promises made for hostile input."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

# The child reports its own peak resident memory (VmHWM) when it exits. Its ru_maxrss would not do: Linux
# carries the forking parent's peak (this test process, with torch loaded) across exec into the child's.
_BOOT = """
import atexit, os, sys

def _report_peak():
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["UNETKIT_TEST_PEAK_FILE"], "w") as out:
        out.write(kb)

atexit.register(_report_peak)
sys.argv[0] = "unetkit"
from unetkit.cli.main import main
sys.exit(main())
"""


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    peak_mb: float  # the child's peak resident memory (VmHWM of its own process image)


def run_cli(argv: list[str], cwd: Path, env: dict | None = None, timeout: float = 120) -> Result:
    """The unetkit CLI with ``argv`` in a child process in ``cwd`` (the entry point ``python -m unetkit`` runs)."""
    peak_file = Path(tempfile.mkdtemp()) / "peak_kb"
    child_env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "default",
        "UNETKIT_TEST_PEAK_FILE": str(peak_file),
        **(env or {}),
    }
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, *argv], cwd=cwd, stdout=out, stderr=err, env=child_env
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, _usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            proc.returncode = 0  # reaped by wait4; keeps Popen from waiting again
        out.seek(0)
        err.seek(0)
        peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
        shutil.rmtree(peak_file.parent, ignore_errors=True)
        return Result(
            os.waitstatus_to_exitcode(status),
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            peak,
        )


def reset_peak() -> None:
    """Reset this process's peak resident memory (VmHWM) to its current size."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM) since start or the last :func:`reset_peak`."""
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) / 1024


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
