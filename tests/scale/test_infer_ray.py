"""`infer --engine ray` on a real two-node cluster: the same project (masks included) as a local run, and an
image that cannot be read stops the run as locally, leaving no output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.helpers import make_checkpoint
from unetkit.cli.main import main
from unetkit.demo.pipeline import write_sample_project

from .helpers import tree_hashes

pytestmark = pytest.mark.xdist_group("ray")
SLIDING = {
    "model": {"gpu_device": 0},
    "mode": {"name": "sliding_window", "window": {"width": 40, "height": 40}, "min_overlap": {"x": 8, "y": 8},
             "save": False, "class_name": "sliding_window", "model_classes": {"add_suffix": "_unet"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "random", seed=1)


def infer(checkpoint: Path, project: Path, out: Path, *extra: str) -> int:
    return main(["infer", "--model", str(checkpoint), "--project", str(project), "--out", str(out),
                 "--batch-size", "3", "--no-progress", *extra])  # fmt: skip


@pytest.mark.parametrize("mode", ["full_image", "sliding_window"])
def test_masks_on_two_nodes_equal_the_local_run(ray_cluster, checkpoint, tmp_path, mode, capsys):
    project = write_sample_project(tmp_path / "fundus", "img", [11, 12, 13, 14, 15, 16, 17], size=64).path
    extra = []
    if mode == "sliding_window":
        (tmp_path / "sliding.json").write_text(json.dumps(SLIDING))
        extra = ["--config", str(tmp_path / "sliding.json")]
    assert infer(checkpoint, project, tmp_path / "local", *extra) == 0
    ray = ["--engine", "ray", "--address", ray_cluster.address]
    assert infer(checkpoint, project, tmp_path / "ray", *extra, *ray) == 0
    out = capsys.readouterr().out
    assert "model applied: 7 images" in out and "on Ray: 2 node(s), 2 model actor(s)" in out
    hashes = tree_hashes(tmp_path / "ray")
    assert len(hashes) == 1 + 2 * 7 and hashes == tree_hashes(tmp_path / "local")
    assert "_unet" in (tmp_path / "ray" / "meta.json").read_text()


def test_an_unreadable_image_fails_like_local_and_leaves_no_output(ray_cluster, checkpoint, tmp_path, capsys):
    project = write_sample_project(tmp_path / "fundus", "img", [1, 2, 3, 4], size=64).path
    broken = project / "ds0" / "img" / "img_02.png"
    broken.write_bytes(broken.read_bytes()[:100])
    assert infer(checkpoint, project, tmp_path / "local") == 2
    local = capsys.readouterr().err
    assert (
        infer(checkpoint, project, tmp_path / "ray", "--engine", "ray", "--address", ray_cluster.address) == 2
    )
    on_ray = capsys.readouterr().err
    errors = [[line for line in err.splitlines() if line.startswith("error:")] for err in (local, on_ray)]
    assert errors[1] == errors[0] and len(errors[0]) == 1 and str(broken) in errors[0][0]
    assert "Traceback" not in on_ray  # (the workers' own log lines may reach stderr too)
    assert not (tmp_path / "ray").exists() and not list(tmp_path.glob(".ray*"))
