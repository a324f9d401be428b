import json

import numpy as np
import pytest

from unetkit.errors import FormatError
from unetkit.project import Annotation, Project, ProjectMeta, ProjectWriter, read_image, write_image

from .helpers import sample_annotation, sample_meta


def test_write_read_round_trip(tmp_path):
    meta, ann = sample_meta(), sample_annotation()
    image = np.random.default_rng(0).integers(0, 255, (ann.height, ann.width, 3), dtype=np.uint8)
    writer = ProjectWriter(tmp_path / "out", meta)
    writer.add_item("ds", "a.png", image, ann)
    writer.add_item("Parent/Child", "b.png", image, ann)
    project = Project.read(tmp_path / "out")
    assert project.meta == meta
    assert [d.name for d in project.datasets] == ["Parent/Child", "ds"]
    assert len(project) == 2
    for item in project.items():
        assert item.read_annotation(project.meta) == ann
        assert np.array_equal(item.read_image(), image)
    assert (tmp_path / "out/Parent/datasets/Child/ann/b.png.json").is_file()
    raw = json.loads((tmp_path / "out/ds/ann/a.png.json").read_text())
    assert raw["unknownTopKey"] == {"x": 1} and raw["objects"][0]["id"] == 11


def test_writer_refuses_non_empty_and_source(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("1")
    with pytest.raises(FormatError, match="not empty"):
        ProjectWriter(tmp_path / "x", ProjectMeta())
    ProjectWriter(tmp_path / "x", ProjectMeta(), allow_existing=True)
    with pytest.raises(FormatError, match="source project"):
        ProjectWriter(tmp_path / "x", ProjectMeta(), allow_existing=True, sources=[tmp_path / "x"])
    with pytest.raises(FormatError, match="source project"):
        ProjectWriter(tmp_path / "x" / "sub", ProjectMeta(), sources=[tmp_path / "x"])


@pytest.mark.parametrize(
    "dataset, name",
    [
        ("..", "a.png"),
        ("ds", "../a.png"),
        ("ds", "a/b.png"),
        ("/abs", "a.png"),
        ("ds", "a\\b.png"),
        ("ds", "a\x00.png"),
        ("a/../b", "a.png"),
        ("ds", "a.txt"),
    ],
)
def test_writer_rejects_bad_names(tmp_path, dataset, name):
    writer = ProjectWriter(tmp_path / "p", ProjectMeta())
    with pytest.raises(FormatError):
        writer.add_item(dataset, name, np.zeros((2, 2, 3), np.uint8), Annotation(2, 2))
    assert not any(p.name in ("a.png", "b.png") for p in tmp_path.rglob("*"))


def test_writer_size_mismatch(tmp_path):
    writer = ProjectWriter(tmp_path / "p", ProjectMeta())
    with pytest.raises(FormatError, match="does not match"):
        writer.add_item("ds", "a.png", np.zeros((3, 2, 3), np.uint8), Annotation(2, 2))


def test_image_io_converts_to_rgb(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200
    write_image(tmp_path / "a.png", rgb)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)
    gray = np.full((4, 5), 77, np.uint8)
    write_image(tmp_path / "g.png", gray)
    assert read_image(tmp_path / "g.png").tolist() == np.full((4, 5, 3), 77).tolist()
    rgba = np.dstack([rgb, np.full((4, 5), 10, np.uint8)])
    write_image(tmp_path / "r.png", rgba)
    assert np.array_equal(read_image(tmp_path / "r.png"), rgb)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_only_allowed_extensions_are_items(tmp_path):
    from unetkit.project import IMAGE_EXTENSIONS

    writer = ProjectWriter(tmp_path / "p", ProjectMeta())
    for ext in IMAGE_EXTENSIONS:
        if ext == ".mpo":
            continue
        writer.add_item(
            "ds",
            f"a{ext.upper() if ext == '.bmp' else ext}",
            np.full((3, 4, 3), 9, np.uint8),
            Annotation(3, 4),
        )
    (tmp_path / "p/ds/img/notes.txt").write_text("x")
    (tmp_path / "p/ds/img/scan.xcf").write_bytes(b"gimp xcf v011")
    (tmp_path / "p/ds/ann/orphan.png.json").write_text("{}")  # annotations without images are ignored
    project = Project.read(tmp_path / "p")
    names = sorted(i.name for i in project.items())
    assert names == sorted(f"a{e.upper() if e == '.bmp' else e}" for e in IMAGE_EXTENSIONS if e != ".mpo")
    for item in project.items():
        img = item.read_image()
        assert img.shape == (3, 4, 3) and img.dtype == np.uint8
        lossy = item.name.endswith((".jpg", ".jpeg", ".jfif", ".webp", ".avif", ".heic", ".heif"))
        assert lossy or (img == 9).all()


def test_path_image_is_linked_or_copied_not_moved(tmp_path):
    src = tmp_path / "src.png"
    write_image(src, np.full((2, 3, 3), 5, np.uint8))
    before = src.read_bytes()
    writer = ProjectWriter(tmp_path / "p", ProjectMeta())
    item = writer.add_item("ds", "x.png", src, Annotation(2, 3))
    assert item.image_path.read_bytes() == before and src.read_bytes() == before
    with pytest.raises(FormatError, match="duplicate item"):
        writer.add_item("ds", "x.png", src, Annotation(2, 3))
    with pytest.raises(FormatError, match="does not match"):
        writer.add_item("ds", "y.png", src, Annotation(3, 3))


def test_written_files_have_normal_permissions(tmp_path):
    import os

    write_image(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_2018_v1_project_with_classes_json_reads_and_validates(tmp_path):
    from unetkit.project import validate_project

    meta, ann = sample_meta(), sample_annotation()
    image = np.zeros((ann.height, ann.width, 3), np.uint8)
    ProjectWriter(tmp_path / "p", meta).add_item("ds", "a.png", image, ann)
    classes = json.loads((tmp_path / "p" / "meta.json").read_text())["classes"]
    (tmp_path / "p" / "meta.json").unlink()
    (tmp_path / "p" / "classes.json").write_text(json.dumps(classes))  # V1: the bare list of classes
    project = Project.read(tmp_path / "p")
    assert [c.title for c in project.meta.classes] == [c.title for c in meta.classes]
    assert project.meta.tag_metas == []
    # V1 had no tag metas: the only problems are the annotation's tags, each named by its JSON path
    problems = validate_project(tmp_path / "p")
    assert [(p.json_path, p.message) for p in problems] == [
        ("$.tags[0]", "tag 'train' is not defined in meta.json"),
        ("$.objects[0].tags[0]", "tag 'note' is not defined in meta.json"),
    ]
    (tmp_path / "p" / "classes.json").unlink()
    with pytest.raises(FormatError, match="meta.json not found"):
        Project.read(tmp_path / "p")
