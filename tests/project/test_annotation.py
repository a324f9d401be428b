import copy

import numpy as np
import pytest

from unetkit.errors import FormatError
from unetkit.project import (
    Annotation,
    Bitmap,
    ObjClass,
    Point,
    Polygon,
    Polyline,
    ProjectMeta,
    RawGeometry,
    Rectangle,
    encode_bitmap_data,
)

from .helpers import sample_annotation, sample_meta


def test_round_trip_through_json():
    meta, ann = sample_meta(), sample_annotation()
    d = ann.to_json()
    assert d["objects"][0]["geometryType"] == d["objects"][0]["shape"] == "bitmap"
    assert d["tags"] == [
        {"name": "train"},
        {"name": "weather", "value": "rain"},
        {"name": "count", "value": 3},
    ]
    assert Annotation.from_json(d, meta) == ann


def test_unknown_geometries_and_keys_are_kept_verbatim():
    meta = sample_meta().clone(
        classes=sample_meta().classes
        + [ObjClass("cube", "cuboid", "#010203"), ObjClass("anything", "any", "#000001")]
    )
    raw = {
        "size": {"height": 10, "width": 10},
        "tags": [],
        "objects": [
            {
                "classTitle": "pose",
                "tags": [],
                "nodes": {"a": {"loc": [1, 2]}},
                "labelerLogin": "me",
                "geometryType": "graph",
            },
            {"classTitle": "cube", "tags": [], "points": [[0, 0]] * 7, "faces": [[0, 1, 2, 3]] * 3},
            {
                "classTitle": "anything",
                "tags": [],
                "geometryType": "polygon",
                "points": {"exterior": [[0, 0], [5, 0], [5, 5]]},
            },
            {
                "classTitle": "anything",
                "tags": [],
                "geometryType": "mesh3d",
                "vertices": [1, 2],
                "type": "junk",
            },
        ],
        "futureField": [1, 2, 3],
    }
    ann = Annotation.from_json(copy.deepcopy(raw), meta)
    graph, cube, poly, mesh = (lb.geometry for lb in ann.labels)
    assert (
        isinstance(graph, RawGeometry)
        and graph.name == "graph"
        and graph.payload == {"nodes": {"a": {"loc": [1, 2]}}}
    )
    assert graph.bbox() == Rectangle(1, 2, 1, 2)
    assert isinstance(cube, RawGeometry) and cube.payload["faces"] == [[0, 1, 2, 3]] * 3
    assert isinstance(poly, Polygon)
    assert isinstance(mesh, RawGeometry) and mesh.payload == {"vertices": [1, 2], "type": "junk"}
    out = ann.to_json()
    assert out["futureField"] == [1, 2, 3]
    assert (
        out["objects"][0]["nodes"] == raw["objects"][0]["nodes"] and out["objects"][0]["labelerLogin"] == "me"
    )
    assert out["objects"][1]["points"] == raw["objects"][1]["points"]
    assert out["objects"][3]["vertices"] == [1, 2] and out["objects"][3]["geometryType"] == "mesh3d"
    assert Annotation.from_json(out, meta) == ann
    with pytest.raises(ValueError, match="cannot rasterise"):
        graph.draw(np.zeros((3, 3)), 1)


def test_fractional_points_are_floored_like_the_current_sdk_and_rectangles_sorted():
    meta = sample_meta()
    raw = {
        "size": {"height": 10, "width": 10},
        "tags": [],
        "objects": [
            {"classTitle": "dot", "tags": [], "points": {"exterior": [[2.5, 3.5]], "interior": []}},
            {"classTitle": "box", "tags": [], "points": {"exterior": [[8, 9], [1.2, 0.7]], "interior": []}},
            {"classTitle": "edge", "tags": [], "points": {"exterior": [[0.5, 1.5], [4, 4]], "interior": []}},
        ],
    }
    dot, box, edge = (lb.geometry for lb in Annotation.from_json(raw, meta).labels)
    assert (dot.x, dot.y) == (2, 3)  # floor, as SDK 6.74 rasterises (unetkit used to round half-to-even)
    assert isinstance(dot.x, int)
    assert (box.left, box.top, box.right, box.bottom) == (1, 0, 8, 9)
    assert (box.width, box.height) == (8, 10)
    assert edge.points.tolist() == [[0, 1], [4, 4]]


def test_geometry_helpers():
    poly = Polygon([[0, 0], [10, 0], [10, 10], [0, 10]], [[[2, 2], [4, 2], [4, 4], [2, 4]]])
    assert poly.area() == 96
    assert poly.bbox() == Rectangle(0, 0, 10, 10)
    assert poly.translate(1, 2).exterior[0].tolist() == [1, 2]
    bm = Bitmap((5, 5), np.pad(np.ones((2, 3), bool), 2))
    assert bm.origin == (7, 7) and bm.mask.shape == (2, 3)  # cropped to the tight box
    assert bm.bbox() == Rectangle(7, 7, 9, 8) and bm.area() == 6
    assert bm.translate(-7, -7).full_mask(2, 3).all()
    assert Polyline([[0, 0], [3, 4]]).bbox() == Rectangle(0, 0, 3, 4)
    assert Point(3, 4).translate(1, 1) == Point(4, 5)
    with pytest.raises(ValueError, match="empty mask"):
        Bitmap((0, 0), np.zeros((2, 2), bool))


def _ann(obj, meta=None, **top):
    d = {"size": {"height": 10, "width": 10}, "tags": [], "objects": [obj] if obj is not None else []}
    d.update(top)
    return Annotation.from_json(d, meta or sample_meta(), file="a.json")


@pytest.mark.parametrize(
    "obj, top, path, message",
    [
        ({"classTitle": "nope", "tags": []}, {}, "$.objects[0].classTitle", "class 'nope' is not defined"),
        ({"tags": []}, {}, "$.objects[0].classTitle", "missing 'classTitle'"),
        ({"classTitle": "lemon", "tags": []}, {}, "$.objects[0]", "missing or invalid 'bitmap'"),
        (
            {"classTitle": "lemon", "tags": [], "bitmap": {"origin": [0, 0], "data": "%%%"}},
            {},
            "$.objects[0].bitmap.data",
            "invalid base64",
        ),
        (
            {
                "classTitle": "lemon",
                "tags": [],
                "bitmap": {"origin": [0.5, 0], "data": encode_bitmap_data(np.ones((1, 1)))},
            },
            {},
            "$.objects[0].bitmap.origin",
            "origin must be",
        ),
        (
            {"classTitle": "road", "tags": [], "points": {"exterior": [[0, 0], [1, 1]]}},
            {},
            "$.objects[0].points.exterior",
            "at least 3",
        ),
        (
            {
                "classTitle": "road",
                "tags": [],
                "points": {"exterior": [[0, 0], [1, 1], [2, 0]], "interior": [[[0, 0]]]},
            },
            {},
            "$.objects[0].points.interior[0]",
            "at least 3",
        ),
        (
            {"classTitle": "box", "tags": [], "points": {"exterior": [[0, 0]]}},
            {},
            "$.objects[0].points.exterior",
            "at least 2",
        ),
        (
            {"classTitle": "dot", "tags": [], "points": {"exterior": [[0, "a"]]}},
            {},
            "$.objects[0].points.exterior[0]",
            "two numbers",
        ),
        (
            {
                "classTitle": "dot",
                "tags": [{"name": "weather", "value": "snow"}],
                "points": {"exterior": [[1, 1]]},
            },
            {},
            "$.objects[0].tags[0].value",
            "does not match",
        ),
        (None, {"tags": [{"name": "unknown"}]}, "$.tags[0]", "not defined in meta.json"),
        (None, {"tags": [{"name": "count", "value": "3"}]}, "$.tags[0].value", "any_number"),
        (None, {"size": {"height": 0, "width": 3}}, "$.size.height", "positive integer"),
        (None, {"size": None}, "$.size", "missing 'size'"),
        (None, {"objects": {}}, "$.objects", "expected a list"),
    ],
)
def test_annotation_errors_name_file_and_path(obj, top, path, message):
    with pytest.raises(FormatError) as info:
        _ann(obj, **top)
    assert info.value.file == "a.json"
    assert info.value.json_path == path
    assert message in info.value.message


def test_bare_string_tags_accepted():
    ann = _ann(None, tags=["train"])
    assert ann.tags[0].name == "train"
    assert ann.to_json()["tags"] == ["train"]


def test_meta_is_needed_for_tag_validation():
    meta = ProjectMeta([ObjClass("a", "point", "#000000")])
    with pytest.raises(FormatError, match="not defined"):
        _ann({"classTitle": "a", "tags": ["x"], "points": {"exterior": [[1, 1]]}}, meta)
