"""A real two-node Ray cluster on 127.0.0.1 for the scale-out tests: `ray start --head` plus `ray start
--address`, one CPU and 100 MB of object store each, no dashboard; stopped at the end of the session even when
tests fail. Tests connect to it with ``--address``. Without Ray these tests fail when CI=true, skip otherwise.

All Ray tests share one xdist group, so one worker runs them against one cluster.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from unetkit.ports import free_port

NODE_OPTIONS = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats", "--block"]
START_TIMEOUT = 90.0


def require_ray():
    try:
        import ray
    except ImportError:
        message = 'Ray is not installed (pip install -e ".[dev,ray]")'
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return ray


def descendants(pid: int) -> dict[int, str]:
    """pid -> process name of every live descendant of ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        children.setdefault(int(rest.split()[1]), []).append(int(entry))
        names[int(entry)] = name
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found[child] = names[child]
            todo.append(child)
    return found


class RayCluster:
    """`ray start` processes (with --block, so that ending one ends its node) under one temp folder."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="ukray", dir="/tmp"))  # short: Ray's socket paths
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []
        self.ray = str(Path(sys.executable).with_name("ray"))

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"node{len(self.nodes)}.log", "w")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen(
            [self.ray, "start", *args, *NODE_OPTIONS],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        )
        self.nodes.append(proc)
        return proc

    def start(self) -> None:
        self._start(
            ["--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port)]
            + ["--include-dashboard=false", "--temp-dir", str(self.root / "tmp")]
        )
        self._wait(lambda: _listening(self.port), "the head's GCS port")
        self.add_node()

    def add_node(self) -> subprocess.Popen:
        """Start one more worker node and wait until the cluster counts it alive."""
        import ray

        proc = self._start(["--address", self.address, "--node-ip-address", "127.0.0.1"])
        ray.init(address=self.address, logging_level="WARNING", log_to_driver=False)
        try:
            alive = lambda: sum(n["Alive"] for n in ray.nodes()) >= len(self.nodes)  # noqa: E731
            self._wait(alive, f"{len(self.nodes)} alive nodes")
        finally:
            ray.shutdown()
        return proc

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            dead = [p for p in self.nodes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in sorted(self.root.glob("node*.log")))
                raise RuntimeError(f"Ray cluster: no {what}\n{logs}")
            time.sleep(0.25)

    def kill_raylet(self, node: subprocess.Popen) -> int:
        """SIGKILL the raylet of ``node`` (its `ray start --block` then ends the node's other processes)."""
        pid = next(p for p, name in descendants(node.pid).items() if name == "raylet")
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        """End every node (workers first), then anything they left, then the temp folder."""
        leftovers: dict[int, str] = {}
        for proc in reversed(self.nodes):
            leftovers.update(descendants(proc.pid))
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.nodes:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid, name in leftovers.items():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == name:  # still that process
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def ray_cluster():
    """A head and a second node on 127.0.0.1; ``.address`` is what tests pass to ``--address``."""
    require_ray()
    cluster = RayCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
