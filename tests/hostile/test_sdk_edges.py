"""Edge cases checked against the current Supervisely SDK (6.74)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unetkit.dtl.executor import load_inputs, run_graph
from unetkit.dtl.graph import load_graph
from unetkit.errors import FormatError
from unetkit.project import Annotation, Project, ProjectMeta, rasterize

from .builders import META, make_project, polygon

META_WITH_CUBOID = {
    **META,
    "classes": [
        *META["classes"],
        {"title": "box3d", "shape": "cuboid_2d", "color": "#FF00FF", "geometry_config": {}},
    ],
}
CUBOID = {
    "classTitle": "box3d",
    "tags": [],
    "vertices": {"face1-topleft": {"loc": [2, 2]}, "face1-bottomright": {"loc": [9, 9]}},
}


def _run(tmp_path, layer: dict):
    graph = tmp_path / "graph.json"
    graph.write_text(
        json.dumps(
            [
                {"action": "data", "src": ["in/*"], "dst": "$d", "settings": {"classes_mapping": "default"}},
                {**layer, "src": ["$d"], "dst": "$t"},
                {"action": "save", "src": ["$t"], "dst": "out", "settings": {}},
            ]
        )
    )
    projects = load_inputs([str(tmp_path / "in")])
    g = load_graph(graph, {p.name: p.meta for p in projects})
    report = run_graph(g, projects, tmp_path / "out", seed=0, progress=False)
    project = Project.read(tmp_path / "out")
    (item,) = project.items()
    return report, json.loads(item.ann_path.read_text()), project.meta


def test_a_geometric_layer_drops_only_the_object_it_cannot_transform(tmp_path):
    make_project(tmp_path / "in", [CUBOID, polygon([[1, 1], [20, 1], [20, 20]])], meta=META_WITH_CUBOID)
    report, ann, _ = _run(tmp_path, {"action": "flip", "settings": {"axis": "vertical"}})
    assert report.written == 1 and not report.skipped and report.dropped_objects == 1
    assert [o["classTitle"] for o in ann["objects"]] == ["road"]


def test_resize_and_rotate_write_integer_coordinates(tmp_path):
    make_project(tmp_path / "in", [polygon([[1, 1], [20, 1], [20, 20], [3, 17]])])
    layers = [
        {"action": "resize", "settings": {"width": 45, "height": 37, "aspect_ratio": {"keep": False}}},
        {"action": "rotate", "settings": {"rotate_angles": {"min_degrees": 17, "max_degrees": 17},
                                          "black_regions": {"mode": "keep"}}},
    ]  # fmt: skip
    for i, layer in enumerate(layers):
        run_dir = tmp_path / f"r{i}"
        run_dir.mkdir()
        (run_dir / "in").symlink_to(tmp_path / "in", target_is_directory=True)
        _, ann, _ = _run(run_dir, layer)
        points = ann["objects"][0]["points"]["exterior"]
        assert points and all(type(c) is int for p in points for c in p), points


def test_fractional_input_is_rasterised_with_floor():
    meta = ProjectMeta.from_json(META)
    raw = {
        "size": {"height": 8, "width": 8},
        "objects": [polygon([[0.9, 0.9], [5.9, 0.9], [5.9, 5.9], [0.9, 5.9]])],
    }
    mask = rasterize(Annotation.from_json(raw, meta), {"road": 1})
    expected = np.zeros((8, 8), np.int32)
    expected[0:6, 0:6] = 1  # floor(0.9) = 0, floor(5.9) = 5; rounding would have drawn rows/columns 1..6
    assert np.array_equal(mask, expected)


def test_date_tags_of_the_current_sdk_are_read_and_checked():
    meta = ProjectMeta.from_json(
        {**META, "tags": [{"name": "reviewed_at", "value_type": "date", "color": "#00FF00"}]}
    )
    assert meta.to_json()["tags"][0]["value_type"] == "date"
    for value in ("2026-04-23T15:15:48", "2021-01-22T19:37:50.158Z", "2024-02-29"):
        raw = {
            "size": {"height": 4, "width": 4},
            "tags": [{"name": "reviewed_at", "value": value}],
            "objects": [],
        }
        assert Annotation.from_json(raw, meta).tags[0].value == value
    raw = {
        "size": {"height": 4, "width": 4},
        "tags": [{"name": "reviewed_at", "value": "yesterday"}],
        "objects": [],
    }
    with pytest.raises(FormatError, match="ISO 8601") as exc:
        Annotation.from_json(raw, meta, file="a.json")
    assert exc.value.json_path == "$.tags[0].value"


def test_keypoint_graphs_with_hostile_coordinates_are_errors_or_kept_verbatim():
    from unetkit.dtl import geometry_ops as ops
    from unetkit.project import RawGeometry

    g = RawGeometry(
        "graph",
        {"nodes": {"a": {"loc": [10**400, 1]}, "b": {"loc": [float("nan"), 2]}, "c": {"loc": [3, 4]}}},
    )
    with pytest.raises(ValueError, match="out of range"):
        g.bbox()
    (flipped,) = [ops.flip_geometry(g, "vertical", 10, 10)]
    nodes = flipped.payload["nodes"]
    assert nodes["a"]["loc"] == [10**400, 1] and nodes["c"]["loc"] == [6, 4]
