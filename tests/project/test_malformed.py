"""Malformed inputs: each gives one clear problem naming the file, the JSON path and what is wrong."""

import json

import numpy as np
import pytest

from unetkit.errors import FormatError
from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    ObjClass,
    Project,
    ProjectMeta,
    ProjectWriter,
    Rectangle,
    validate_project,
)


def make_project(root):
    meta = ProjectMeta([ObjClass("blob", "bitmap", "#FF0000"), ObjClass("box", "rectangle", "#00FF00")])
    writer = ProjectWriter(root, meta)
    mask = np.ones((3, 3), bool)
    for name in ("a.png", "b.png"):
        ann = Annotation(8, 8, [Label("blob", Bitmap((2, 2), mask)), Label("box", Rectangle(0, 0, 1, 1))])
        writer.add_item("ds", name, np.zeros((8, 8, 3), np.uint8), ann)
    return root


def edit_ann(root, fn, name="a.png"):
    path = root / "ds" / "ann" / f"{name}.json"
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def truncate(root):
    path = root / "ds/ann/a.png.json"
    path.write_text(path.read_text()[:40])


def set_obj(key, value, index=0):
    def fn(d):
        target = d["objects"][index]
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value

    return fn


def duplicate_class(root):
    d = json.loads((root / "meta.json").read_text())
    d["classes"].append(dict(d["classes"][0]))
    (root / "meta.json").write_text(json.dumps(d))


MALFORMED = [
    ("truncated JSON", truncate, "ds/ann/a.png.json", "$", "invalid JSON"),
    (
        "unknown class",
        lambda r: edit_ann(r, set_obj("classTitle", "ghost")),
        "ds/ann/a.png.json",
        "$.objects[0].classTitle",
        "class 'ghost' is not defined in meta.json",
    ),
    (
        "bitmap outside the image",
        lambda r: edit_ann(r, set_obj("bitmap.origin", [6, 1])),
        "ds/ann/a.png.json",
        "$.objects[0].bitmap.origin",
        "lies outside the image",
    ),
    (
        "bad base64",
        lambda r: edit_ann(r, set_obj("bitmap.data", "eJ!!not-base64")),
        "ds/ann/a.png.json",
        "$.objects[0].bitmap.data",
        "invalid base64",
    ),
    (
        "missing annotation",
        lambda r: (r / "ds/ann/a.png.json").unlink(),
        "ds/img/a.png",
        "",
        "has no annotation file",
    ),
    (
        "size mismatch",
        lambda r: edit_ann(r, lambda d: d["size"].update(height=9)),
        "ds/ann/a.png.json",
        "$.size",
        "does not match the image a.png (8x8)",
    ),
    ("duplicate class", duplicate_class, "meta.json", "$.classes[2].title", "duplicate class title 'blob'"),
    (
        "rectangle with one point",
        lambda r: edit_ann(r, set_obj("points", {"exterior": [[0, 0]], "interior": []}, 1)),
        "ds/ann/a.png.json",
        "$.objects[1].points.exterior",
        "at least 2 points",
    ),
]


@pytest.mark.parametrize("case, mutate, file, json_path, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_gives_one_clear_problem(tmp_path, case, mutate, file, json_path, message):
    root = make_project(tmp_path / "p")
    assert validate_project(root) == []
    mutate(root)
    problems = validate_project(root)
    assert len(problems) == 1, problems
    (p,) = problems
    assert p.file == str(root / file)
    assert p.json_path == json_path
    assert message in p.message
    assert str(p).startswith(str(root / file))


@pytest.mark.parametrize("case, mutate, file, json_path, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_reading_raises_the_same_error(tmp_path, case, mutate, file, json_path, message):
    root = make_project(tmp_path / "p")
    mutate(root)
    if case in ("bitmap outside the image", "size mismatch"):
        # readable (the SDK reads them too), but flagged by validation
        project = Project.read(root)
        for item in project.items():
            item.read_annotation(project.meta)
        return
    with pytest.raises(FormatError) as info:
        project = Project.read(root)
        for item in project.items():
            item.read_annotation(project.meta)
    assert info.value.file == str(root / file)
    assert message in info.value.message


def test_every_problem_is_listed(tmp_path):
    root = make_project(tmp_path / "p")
    edit_ann(root, set_obj("classTitle", "ghost"), "a.png")
    edit_ann(root, set_obj("bitmap.data", "###"), "b.png")
    edit_ann(root, set_obj("classTitle", "ghost2", 1), "b.png")
    (root / "ds" / "img" / "c.png").write_bytes((root / "ds" / "img" / "a.png").read_bytes())
    problems = validate_project(root)
    assert sorted((p.file.rsplit("/", 1)[-1], p.json_path) for p in problems) == [
        ("a.png.json", "$.objects[0].classTitle"),
        ("b.png.json", "$.objects[0].bitmap.data"),
        ("b.png.json", "$.objects[1].classTitle"),
        ("c.png", ""),
    ]


def test_layout_problems(tmp_path):
    assert "project folder not found" in validate_project(tmp_path / "missing")[0].message
    root = make_project(tmp_path / "p")
    (root / "meta.json").unlink()
    assert [p.message for p in validate_project(root)] == ["file not found"]
    with pytest.raises(FormatError, match="meta.json not found"):
        Project.read(root)
    root = make_project(tmp_path / "q")
    (root / "other").mkdir()
    problems = validate_project(root)
    assert len(problems) == 1 and "needs img/ and ann/" in problems[0].message
    with pytest.raises(FormatError, match="needs img/ and ann/"):
        Project.read(root)


def test_two_images_one_legacy_annotation(tmp_path):
    root = make_project(tmp_path / "p")
    ann_dir = root / "ds" / "ann"
    (ann_dir / "a.png.json").rename(ann_dir / "a.json")
    (root / "ds" / "img" / "a.jpg").write_bytes(b"")
    with pytest.raises(FormatError, match="resolve to the same annotation file"):
        Project.read(root)


def test_tag_applicability_is_checked(tmp_path):
    root = make_project(tmp_path / "p")
    d = json.loads((root / "meta.json").read_text())
    d["tags"] = [
        {"name": "img", "value_type": "none", "applicable_type": "imagesOnly"},
        {"name": "obj", "value_type": "none", "applicable_type": "objectsOnly", "classes": ["box"]},
    ]
    (root / "meta.json").write_text(json.dumps(d))

    def tag_all(ann):
        ann["tags"] = [{"name": "img"}, {"name": "obj"}]
        ann["objects"][0]["tags"] = [{"name": "img"}, {"name": "obj"}]
        ann["objects"][1]["tags"] = [{"name": "obj"}]

    edit_ann(root, tag_all)
    problems = validate_project(root)
    assert [(p.json_path, p.message.split(" (")[0].split(",")[0]) for p in problems] == [
        ("$.tags[1]", "tag 'obj' is applicable to objects only"),
        ("$.objects[0].tags[0]", "tag 'img' is applicable to images only"),
        ("$.objects[0].tags[1]", "tag 'obj' is not applicable to class 'blob'"),
    ]
