"""A multi-node Ray cluster on this machine, from real `ray start` processes (127.0.0.1, one CPU and 100 MB of
object store per node, no dashboard), for the scale-out tests and benchmark. Stop it with :meth:`stop`.

The cluster requires its own token (Ray's token authentication); :meth:`LocalRayCluster.start` points
``RAY_AUTH_TOKEN_PATH`` of this process at it, so unetkit here and the processes it starts can connect."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from unetkit.ports import free_port

NODE_OPTIONS = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats", "--block"]
START_TIMEOUT = 90.0


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


class LocalRayCluster:
    """`ray start` processes (with --block, so that ending one ends its node) under one temp folder."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="ukray", dir="/tmp"))  # short: Ray's socket paths
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[subprocess.Popen] = []
        self.logs: list = []
        self.killed: list[subprocess.Popen] = []
        self.ray = str(Path(sys.executable).with_name("ray"))
        self.token = self.root / "auth_token"
        self.token.write_text(secrets.token_hex(32))
        self._saved_env = {k: os.environ.get(k) for k in ("RAY_AUTH_TOKEN_PATH",)}

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"node{len(self.nodes)}.log", "w")  # noqa: SIM115 - closed by stop()
        self.logs.append(log)
        proc = subprocess.Popen(
            [self.ray, "start", *args, *NODE_OPTIONS],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"},
        )
        self.nodes.append(proc)
        return proc

    def start(self, nodes: int = 2) -> LocalRayCluster:
        """Start the head and ``nodes - 1`` more nodes; returns self once the cluster counts them all alive."""
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(self.token)
        self._start(
            ["--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port)]
            + ["--include-dashboard=false", "--temp-dir", str(self.root / "tmp")]
        )
        self._wait(lambda: _listening(self.port), "the head's GCS port")
        self._wait_alive()
        for _ in range(nodes - 1):
            self.add_node()
        return self

    def add_node(self) -> subprocess.Popen:
        """Start one more worker node and wait until the cluster counts it alive."""
        proc = self._start(["--address", self.address, "--node-ip-address", "127.0.0.1"])
        self._wait_alive()
        return proc

    def _wait_alive(self) -> None:
        """Wait until the cluster counts every node started and not killed as alive. A first connection can time
        out on a loaded machine while the head is still starting: it is retried until START_TIMEOUT."""
        from unetkit.cluster import connected
        from unetkit.errors import UnetkitError

        deadline = time.monotonic() + START_TIMEOUT
        expected = len(self.nodes) - len(self.killed)
        while True:
            try:
                with connected(self.address) as ray:
                    alive = lambda ray=ray: sum(n["Alive"] for n in ray.nodes()) >= expected  # noqa: E731
                    self._wait(alive, f"{expected} alive nodes")
                return
            except UnetkitError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def wait_settled(self) -> None:
        """Wait until the cluster counts exactly the nodes started and not killed as alive: a killed node is listed
        alive until its heartbeats are missed, and a later test's per-node check would be sent to it."""
        from unetkit.cluster import connected

        expected = len(self.nodes) - len(self.killed)
        with connected(self.address) as ray:
            settled = lambda ray=ray: sum(n["Alive"] for n in ray.nodes()) == expected  # noqa: E731
            self._wait(settled, f"exactly {expected} alive nodes")

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            dead = [p for p in self.nodes if p.poll() is not None and p not in self.killed]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in sorted(self.root.glob("node*.log")))
                raise RuntimeError(f"Ray cluster: no {what}\n{logs}")
            time.sleep(0.25)

    def kill_raylet(self, node: subprocess.Popen) -> int:
        """SIGKILL the raylet of ``node`` (its `ray start --block` then ends the node's other processes)."""
        pid = next(p for p, name in descendants(node.pid).items() if name == "raylet")
        self.killed.append(node)
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
        for log in self.logs:
            log.close()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.root, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
