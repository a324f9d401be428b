"""`project validate` reports what training and inference trip on; warnings do not fail it."""

from __future__ import annotations

from unetkit.cli.main import main
from unetkit.project import validate_project

from .builders import META, make_project

META_WITH_GRAPH = {
    **META,
    "classes": [
        *META["classes"],
        {"title": "pose", "shape": "graph", "color": "#FF00FF", "geometry_config": {}},
    ],
}
GRAPH_OBJECT = {"classTitle": "pose", "tags": [], "nodes": {"a": {"loc": [1, 2]}}}


def test_stray_files_in_img_are_warnings(tmp_path, capsys):
    root = make_project(tmp_path / "p")
    (root / "ds" / "img" / "notes.txt").write_text("hello")
    problems = validate_project(root)
    assert [(p.warning, p.file.endswith("notes.txt")) for p in problems] == [(True, True)]
    assert main(["project", "validate", str(root)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "stray file in img/" in err and "error" not in err


def test_an_object_that_cannot_be_rasterised_is_reported(tmp_path):
    root = make_project(tmp_path / "p", [GRAPH_OBJECT], meta=META_WITH_GRAPH)
    (problem,) = validate_project(root)
    assert problem.warning and problem.json_path == "$.objects[0]"
    assert "'graph' object cannot be rasterised" in problem.message and "'pose'" in problem.message


def test_deep_validation_passes_good_images(tmp_path):
    root = make_project(tmp_path / "p", name="a.jpg")
    assert validate_project(root, deep=True) == []
