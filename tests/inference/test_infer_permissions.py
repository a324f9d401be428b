"""`unetkit infer` output is world-readable (folders 0755, files 0644) whatever the umask, and a failed run
leaves nothing beside the output."""

import json
import os
import stat

import numpy as np
import pytest

from unetkit.cli.main import main
from unetkit.project import Annotation, Label, ObjClass, ProjectMeta, ProjectWriter, Rectangle


@pytest.fixture
def strict_umask():
    old = os.umask(0o077)  # default-created files would be 0600 and folders 0700
    try:
        yield
    finally:
        os.umask(old)


def small_project(path):
    rng = np.random.default_rng(0)
    writer = ProjectWriter(path, ProjectMeta([ObjClass("box", "rectangle", "#00FF00")]))
    for i in range(2):
        image = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        writer.add_item(
            "ds0", f"im{i}.png", image, Annotation(40, 48, [Label("box", Rectangle(2, 3, 20, 30))])
        )
    return path


def modes(root):
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_infer_output_is_0755_folders_and_0644_files(random_ckpt, tmp_path, strict_umask):
    src = small_project(tmp_path / "src")
    assert set(modes(src).values()) == {0o755, 0o644}  # the ProjectWriter too
    out = tmp_path / "nested" / "out"
    assert main(["infer", "--model", str(random_ckpt), "--project", str(src), "--out", str(out)]) == 0
    found = modes(out)
    assert {name for name, mode in found.items() if mode == 0o755} == {".", "ds0", "ds0/img", "ds0/ann"}
    assert {name for name, mode in found.items() if mode != 0o755} == {
        "meta.json", "ds0/img/im0.png", "ds0/img/im1.png", "ds0/ann/im0.png.json", "ds0/ann/im1.png.json"
    }  # fmt: skip
    assert {mode for name, mode in found.items() if mode != 0o755} == {0o644}
    assert stat.S_IMODE((tmp_path / "nested").stat().st_mode) == 0o755


def test_failed_infer_leaves_nothing_beside_the_output(random_ckpt, tmp_path, capsys):
    src = small_project(tmp_path / "src")
    ann_path = src / "ds0" / "ann" / "im1.png.json"
    doc = json.loads(ann_path.read_text())
    doc["size"] = {"height": 10, "width": 48}  # fails on the second item, after the first was written
    ann_path.write_text(json.dumps(doc))
    (tmp_path / "runs").mkdir()
    rc = main(
        ["infer", "--model", str(random_ckpt), "--project", str(src), "--out", str(tmp_path / "runs" / "o")]
    )
    assert rc == 2 and "differs from the image size" in capsys.readouterr().err
    assert list((tmp_path / "runs").iterdir()) == []
