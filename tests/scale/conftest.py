"""A real two-node Ray cluster on 127.0.0.1 for the scale-out tests: `ray start --head` plus `ray start
--address`, one CPU and 100 MB of object store each, no dashboard; stopped at the end of the session even when
tests fail. Tests connect to it with ``--address``. Without Ray these tests fail when CI=true, skip otherwise.

All Ray tests share one xdist group, so one worker runs them against one cluster.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

import pytest

from ray_local import LocalRayCluster


def require_ray():
    try:
        import ray
    except ImportError:
        message = 'Ray is not installed (pip install -e ".[dev,ray]")'
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return ray


@pytest.fixture(scope="session")
def ray_cluster():
    """A head and a second node on 127.0.0.1; ``.address`` is what tests pass to ``--address``.

    One cluster at a time on the machine (a file lock: should xdist ever split the group, a second worker
    waits instead of starting a second cluster beside the first); a start that fails is tried once more."""
    require_ray()
    with open(Path(tempfile.gettempdir()) / "unetkit-test-ray-cluster.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for attempt in (1, 2):
            cluster = LocalRayCluster()
            try:
                cluster.start()
                break
            except Exception:
                cluster.stop()
                if attempt == 2:
                    raise
        try:
            yield cluster
        finally:
            cluster.stop()
