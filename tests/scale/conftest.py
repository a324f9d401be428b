"""A real two-node Ray cluster on 127.0.0.1 for the scale-out tests: `ray start --head` plus `ray start
--address`, one CPU and 100 MB of object store each, no dashboard; stopped at the end of the session even when
tests fail. Tests connect to it with ``--address``. Without Ray these tests fail when CI=true, skip otherwise.

All Ray tests share one xdist group, so one worker runs them against one cluster.
"""

from __future__ import annotations

import os

import pytest

from unetkit.ray_local import LocalRayCluster


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
    """A head and a second node on 127.0.0.1; ``.address`` is what tests pass to ``--address``."""
    require_ray()
    cluster = LocalRayCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
