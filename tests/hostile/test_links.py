"""Links and pointers may not lead out of the folder they belong to."""

from __future__ import annotations

import json

import pytest

from unetkit.errors import FormatError
from unetkit.models.checkpoint import resolve_checkpoint_dir
from unetkit.project import Project, validate_project

from .builders import make_project


def test_an_image_linked_outside_its_project_is_refused_by_readers_and_validate(tmp_path):
    root = make_project(tmp_path / "p")
    image = root / "ds" / "img" / "a.png"
    image.rename(tmp_path / "outside.png")
    image.symlink_to(tmp_path / "outside.png")
    with pytest.raises(FormatError, match="outside the project folder") as exc:
        Project.read(root)
    assert exc.value.file == str(image)
    assert any("a.png is a link to" in str(p) for p in validate_project(root))


def test_links_inside_the_project_are_fine(tmp_path):
    root = make_project(tmp_path / "p")
    image = root / "ds" / "img" / "a.png"
    (root / "ds" / "store").mkdir()
    image.rename(root / "ds" / "store" / "a.png")
    image.symlink_to(root / "ds" / "store" / "a.png")
    assert len(Project.read(root)) == 1


@pytest.mark.parametrize("target", ["../../elsewhere", "/etc", 7])
def test_checkpoint_pointer_leading_outside_its_run_is_refused(tmp_path, target):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (run / "checkpoints" / "best.json").write_text(json.dumps({"path": target}))
    with pytest.raises(FormatError, match="outside its run folder") as exc:
        resolve_checkpoint_dir(run)
    assert exc.value.json_path == "$.path"


def test_checkpoint_pointer_inside_its_run_is_followed(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "epoch_1").mkdir(parents=True)
    (run / "checkpoints" / "last.json").write_text(json.dumps({"path": "checkpoints/epoch_1"}))
    assert resolve_checkpoint_dir(run) == run / "checkpoints" / "epoch_1"
