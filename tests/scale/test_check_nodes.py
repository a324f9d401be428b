"""``cluster.check_nodes`` when a node listed alive leaves the cluster before its storage probe runs: that node is
skipped (the run goes on with the others), and when every node is gone the error is one clear line."""

from __future__ import annotations

import types

import pytest

import unetkit
from unetkit import cluster
from unetkit.errors import UnetkitError

from .conftest import require_ray


@pytest.fixture(autouse=True)
def _ray_installed():
    require_ray()  # fails when CI=true and Ray is missing


class Gone(Exception):
    pass


class GetTimeout(Exception):
    pass


def fake_ray(alive_ids: list[str], gone_ids: set[str]):
    """Enough of Ray for check_nodes: nodes, a remote probe pinned to each, and get() raising for gone nodes."""
    nodes = [
        {"NodeID": i * 56, "Alive": True, "NodeManagerAddress": f"10.0.0.{k}"}
        for k, i in enumerate(alive_ids)
    ]

    class Probe:
        def options(self, scheduling_strategy):
            node = scheduling_strategy.node_id
            return types.SimpleNamespace(remote=lambda *a: node)

    def get(node_id, timeout):
        if node_id in {i * 56 for i in gone_ids}:
            raise Gone(node_id)
        return unetkit.__version__, []

    exceptions = types.SimpleNamespace(GetTimeoutError=GetTimeout, TaskUnschedulableError=Gone)
    return types.SimpleNamespace(
        nodes=lambda: nodes, remote=lambda **kw: lambda fn: Probe(), get=get, exceptions=exceptions
    )


def test_a_node_that_left_is_skipped(tmp_path):
    assert cluster.check_nodes(fake_ray(["a", "b", "c"], {"b"}), [tmp_path]) == 2


def test_every_node_gone_is_one_clear_error(tmp_path):
    with pytest.raises(UnetkitError, match="no Ray node answered"):
        cluster.check_nodes(fake_ray(["a", "b"], {"a", "b"}), [tmp_path])
