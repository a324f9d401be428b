"""A node dies mid-run (its raylet is killed): the run completes through Ray's retries with the local result,
or fails with one clear line and leaves no output."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from unetkit.demo.pipeline import write_sample_project

from .helpers import GRAPH, dtl, tree_hashes

pytestmark = pytest.mark.xdist_group("ray")


def test_killing_a_nodes_raylet_mid_run_completes_or_fails_cleanly(ray_cluster, tmp_path, capsys):
    project = write_sample_project(tmp_path / "vessels", "img", list(range(12)), size=96).path
    extra = ray_cluster.add_node()  # the node to kill; the session's two nodes stay up
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "unetkit", "dtl", "run", str(GRAPH), "--input", str(project),
               "--out", str(out), "--seed", "5", "--no-progress", "--engine", "ray",
               "--address", ray_cluster.address]  # fmt: skip
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("ds0/ann/*.json")):  # items are being written: the run is under way
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.05)
        assert run.poll() is None, "the run ended before the node could be killed"
        ray_cluster.kill_raylet(extra)
        stdout, stderr = run.communicate(timeout=240)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        ray_cluster.wait_settled()  # the next tests use the cluster without the killed node
    if run.returncode == 0:
        assert "528 items written" in stdout and "0 skipped" in stdout, stdout
        assert dtl(GRAPH, project, tmp_path / "local", "--seed", "5") == 0, capsys.readouterr()
        assert tree_hashes(out) == tree_hashes(tmp_path / "local")
    else:
        assert run.returncode == 2, stderr
        assert stderr.splitlines()[-1].startswith("error: ") and "Traceback" not in stderr, stderr
        assert not out.exists()
