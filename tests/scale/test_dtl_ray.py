"""`dtl run --engine ray` on a real two-node cluster: byte-identical projects, per-image errors, storage."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from dtl.test_executor import RANDOM_GRAPH as EXECUTOR_GRAPH
from unetkit.demo.pipeline import write_sample_project

from .conftest import require_ray
from .helpers import GRAPH, dtl, tree_hashes

pytestmark = pytest.mark.xdist_group("ray")
# the executor test's graph (multiply, random crops, random split, save with visualisations) on `vessels`
RANDOM_GRAPH = [{**EXECUTOR_GRAPH[0], "src": ["vessels/*"]}, *EXECUTOR_GRAPH[1:]]


@pytest.fixture(scope="module")
def vessels(tmp_path_factory) -> Path:
    """Five synthetic fundus images named like the tutorial's project (`vessels`)."""
    return write_sample_project(
        tmp_path_factory.mktemp("in") / "vessels", "img", [1, 2, 3, 4, 5], size=64
    ).path


def test_tutorial_graph_on_two_nodes_is_byte_identical_to_local(ray_cluster, vessels, tmp_path, capsys):
    assert dtl(GRAPH, vessels, tmp_path / "local", "--seed", "3") == 0
    local = capsys.readouterr().out
    assert (
        dtl(
            GRAPH,
            vessels,
            tmp_path / "ray",
            "--seed",
            "3",
            "--engine",
            "ray",
            "--address",
            ray_cluster.address,
        )
        == 0
    )
    on_ray = capsys.readouterr().out
    assert "220 items written" in local and "220 items written" in on_ray
    assert "on Ray: 2 node(s), 2 CPU(s)" in on_ray
    assert on_ray.count("  Ray node ") == 2  # both nodes processed images
    hashes = tree_hashes(tmp_path / "ray")
    assert len(hashes) == 1 + 2 * 220 and hashes == tree_hashes(tmp_path / "local")


def test_random_crops_and_a_truncated_image_match_local(ray_cluster, vessels, tmp_path, capsys):
    project = tmp_path / "vessels"
    write_sample_project(project, "img", [1, 2, 3, 4, 5, 6], size=64)
    broken = project / "ds0" / "img" / "img_03.png"
    broken.write_bytes(broken.read_bytes()[:200])  # a truncated PNG: reading it fails
    graph = tmp_path / "random.json"
    graph.write_text(json.dumps(RANDOM_GRAPH))
    assert dtl(graph, project, tmp_path / "local", "--seed", "9") == 1
    local = capsys.readouterr().out
    rc = dtl(
        graph, project, tmp_path / "ray", "--seed", "9", "--engine", "ray", "--address", ray_cluster.address
    )
    assert rc == 1
    on_ray = capsys.readouterr().out
    skipped = [line for line in local.splitlines() if line.lstrip().startswith("skipped")]
    assert len(skipped) == 1 and "img_03.png" in skipped[0]
    assert skipped == [line for line in on_ray.splitlines() if line.lstrip().startswith("skipped")]
    assert "25 items written" in on_ray  # 5 good images × (4 crops + the original)
    assert len(list((tmp_path / "ray").glob("ds0/visualize/*.png"))) == 25
    assert tree_hashes(tmp_path / "ray") == tree_hashes(tmp_path / "local")
    assert not (tmp_path / "ray" / ".unetkit-dtl-tmp").exists()


def test_without_address_a_local_ray_instance_runs_the_graph(
    ray_cluster, vessels, tmp_path, monkeypatch, capsys
):
    # ``ray_cluster`` only orders things: the test cluster is up (and holds the machine's cluster lock) before this
    # test starts a local Ray instance beside it; a cluster started while a local instance shuts down fails to connect
    monkeypatch.setenv("HOME", str(tmp_path))  # Ray may keep a token under ~/.ray
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    graph = tmp_path / "random.json"
    graph.write_text(json.dumps(RANDOM_GRAPH))
    assert dtl(graph, vessels, tmp_path / "local", "--seed", "4") == 0
    assert dtl(graph, vessels, tmp_path / "ray", "--seed", "4", "--engine", "ray") == 0
    assert "on Ray: 1 node(s)" in capsys.readouterr().out
    assert tree_hashes(tmp_path / "ray") == tree_hashes(tmp_path / "local")


def test_a_path_a_node_cannot_see_is_refused_naming_it(ray_cluster, tmp_path):
    from unetkit import cluster
    from unetkit.errors import UnetkitError

    missing = tmp_path / "only-on-the-driver"
    with cluster.connected(ray_cluster.address) as ray:
        assert cluster.check_nodes(ray, [tmp_path], writable=[tmp_path]) == 2
        with pytest.raises(UnetkitError, match="cannot see this path") as info:
            cluster.check_nodes(ray, [tmp_path, missing])
    assert info.value.file == str(missing) and "Ray node" in str(info.value)


def test_without_ray_the_engine_says_what_to_install(vessels, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert dtl(GRAPH, vessels, tmp_path / "out", "--engine", "ray") == 2
    err = capsys.readouterr().err
    assert 'pip install "unetkit[ray]"' in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_an_address_nothing_listens_on_fails_at_once(vessels, tmp_path, capsys):
    require_ray()
    from unetkit.ports import free_port

    address = f"127.0.0.1:{free_port()}"
    assert dtl(GRAPH, vessels, tmp_path / "out", "--engine", "ray", "--address", address) == 2
    assert f"error: cannot reach the Ray cluster at {address}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_install_hint_names_the_range_the_ray_extra_pins():
    import tomllib

    from unetkit.cluster import INSTALL_HINT, RAY_REQUIREMENT

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["ray"] == [RAY_REQUIREMENT]
    assert RAY_REQUIREMENT in INSTALL_HINT
