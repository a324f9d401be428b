"""Ray plumbing shared by the DTL and inference engines: connect, check the nodes, stream results in order.

Ray is an optional dependency (``pip install "unetkit[ray]"``); nothing here imports it before it is needed.
Every node must run the same unetkit and see inputs and outputs at the same path (a shared file system).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from unetkit.errors import UnetkitError

RAY_REQUIREMENT = "ray>=2.60,<2.61"
CONNECT_TIMEOUT = 10.0  # seconds to reach the head's GCS port
log = logging.getLogger("unetkit.cluster")
PROBE_TIMEOUT = 120.0  # seconds for every node to run the storage check (a fresh worker process starts)
INSTALL_HINT = f'--engine ray needs Ray: pip install "unetkit[ray]" (or pip install "{RAY_REQUIREMENT}")'


def require_ray():
    """The ``ray`` module, or a UnetkitError saying exactly what to install."""
    try:
        import ray
    except ImportError:
        raise UnetkitError(INSTALL_HINT) from None
    return ray


@contextlib.contextmanager
def connected(address: str | None):
    """Connect to the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://…``) or, with None, start a local
    Ray instance; disconnect at the end if this call connected. An existing connection is reused as is."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    options = {"address": address, "logging_level": logging.WARNING, "log_to_driver": True}
    if address is None:
        options["include_dashboard"] = False
    else:
        _check_reachable(address)
        _send_token_if_configured()
    try:
        ray.init(**options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise UnetkitError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """A HOST:PORT nothing listens on makes ``ray.init`` retry for minutes: say so at once instead."""
    host, sep, port = address.rpartition(":")
    if address == "auto" or "://" in address or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise UnetkitError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start it with `ray start --head` "
            "or pass the head's GCS address (HOST:PORT, default port 6379) or auto"
        ) from None


def _send_token_if_configured() -> None:
    """Ray 2.60 clusters started where a token exists (~/.ray/auth_token, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH)
    require it; Ray itself sends it only for ``address="auto"``. Do the same for an explicit address when
    RAY_AUTH_MODE is not set (a cluster without authentication ignores the token)."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # another Ray layout: RAY_AUTH_MODE=token still works
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def cluster_cpus(ray) -> int:
    """Whole CPUs of the cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _probe(paths: list[str], writable: list[str]) -> tuple[str, list[str]]:
    """Runs on one node: the unetkit version there and the paths it cannot see (or write, for ``writable``)."""
    import unetkit

    missing = [p for p in paths if not os.path.exists(p)]
    for folder in writable:
        probe = Path(folder) / f".probe-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError:
            missing.append(folder)
    return unetkit.__version__, missing


def check_nodes(ray, paths: list, writable: list = ()) -> int:
    """Run a probe on every alive node: each must see ``paths`` (and write into the folders ``writable``) at
    the same path and run the driver's unetkit version. Returns the number of nodes; UnetkitError otherwise."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    import unetkit

    paths, writable = [str(Path(p).resolve()) for p in paths], [str(Path(p).resolve()) for p in writable]
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
            paths, writable
        )
        for n in nodes
    ]
    gone = tuple(
        getattr(ray.exceptions, name)
        for name in ("TaskUnschedulableError", "NodeDiedError")
        if hasattr(ray.exceptions, name)
    )
    deadline = time.monotonic() + PROBE_TIMEOUT
    live, answers = [], []
    for node, ref in zip(nodes, refs):
        try:
            answers.append(ray.get(ref, timeout=max(0.1, deadline - time.monotonic())))
            live.append(node)
        except ray.exceptions.GetTimeoutError:
            raise UnetkitError(
                f"a Ray node did not answer the storage check within {PROBE_TIMEOUT:.0f} s"
            ) from None
        except gone:  # listed alive, but it left the cluster since: nothing will be scheduled there
            log.info("Ray node %s left the cluster during the storage check", node["NodeID"][:8])
    if not live:
        raise UnetkitError("no Ray node answered the storage check (every node left the cluster)")
    for node, (version, missing) in zip(live, answers):
        where = f"Ray node {node['NodeManagerAddress']} ({node['NodeID'][:8]})"
        if missing:
            raise UnetkitError(
                f"{where} cannot see this path: every node must mount inputs and outputs at the same path "
                "(a shared file system, see docs/scale.md)",
                file=missing[0],
            )
        if version != unetkit.__version__:
            raise UnetkitError(f"{where} runs unetkit {version}, this machine {unetkit.__version__}")
    return len(live)


def ordered_results(ray, submit: Callable[[int], object], count: int, in_flight: int) -> Iterator:
    """``ray.get(submit(i))`` for i in 0..count-1, yielded in order, with at most ``in_flight`` tasks submitted
    and not yet yielded (back-pressure: memory does not grow with ``count``). Task errors are re-raised as the
    original exception where Ray kept it (a UnetkitError stays one)."""
    in_flight = max(1, in_flight)
    pending: dict = {}  # ref -> index
    done: dict[int, object] = {}
    submitted = 0
    for index in range(count):
        while submitted < count and len(pending) + len(done) < in_flight:
            pending[submit(submitted)] = submitted
            submitted += 1
        while index not in done:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            done[pending.pop(ref)] = unwrap_get(ray, ref)
        yield done.pop(index)


def unwrap_get(ray, ref):
    """``ray.get(ref)``; a task that raised re-raises its own exception (not Ray's wrapper) when it can."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise
    except ray.exceptions.RayError as exc:  # a worker, node or object lost beyond Ray's retries
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UnetkitError(f"the Ray cluster failed to run a task ({type(exc).__name__}): {first}") from None
