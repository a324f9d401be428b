"""Small builders shared by the project tests."""

from __future__ import annotations

import numpy as np

from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    ObjClass,
    Point,
    Polygon,
    Polyline,
    ProjectMeta,
    Rectangle,
    Tag,
    TagMeta,
)


def sample_meta() -> ProjectMeta:
    return ProjectMeta(
        [
            ObjClass("lemon", "bitmap", "#FF0000"),
            ObjClass("road", "polygon", "#00FF00", extra={"id": 7, "hotkey": ""}),
            ObjClass("box", "rectangle", "#0000FF"),
            ObjClass("edge", "line", "#FFFF00"),
            ObjClass("dot", "point", "#00FFFF"),
            ObjClass(
                "pose", "graph", "#FF00FF", geometry_config={"nodes": {"a": {"label": "a", "loc": [0, 0]}}}
            ),
        ],
        [
            TagMeta("train"),
            TagMeta("weather", "oneof_string", ["sunny", "rain"], "#A0A08C"),
            TagMeta("count", "any_number"),
            TagMeta("note", "any_string", color="#123456"),
        ],
    )


def sample_annotation() -> Annotation:
    mask = np.zeros((5, 6), bool)
    mask[1:4, 2:5] = True
    mask[2, 3] = False
    return Annotation(
        height=20,
        width=30,
        labels=[
            Label("lemon", Bitmap((3, 4), mask), [Tag("note", "ripe")], "a lemon", {"id": 11}),
            Label(
                "road",
                Polygon([[1, 1], [20, 1], [20, 15], [1, 15]], [[[5, 5], [10, 5], [10, 10], [5, 10]]]),
            ),
            Label("box", Rectangle(2, 3, 8, 9)),
            Label("edge", Polyline([[0, 0], [29, 19]])),
            Label("dot", Point(7, 7)),
        ],
        tags=[Tag("train"), Tag("weather", "rain"), Tag("count", 3)],
        description="sample",
        custom_big_data={"k": [1, 2]},
        extra={"unknownTopKey": {"x": 1}},
    )
