"""Shared builders for the DTL tests: a meta with one class per geometry and an element holding them all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unetkit.dtl.base import LayerContext
from unetkit.dtl.element import Element, ImageRef
from unetkit.dtl.executor import derive_rng
from unetkit.dtl.graph import parse_layer
from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    ObjClass,
    Point,
    Polygon,
    Polyline,
    ProjectMeta,
    ProjectWriter,
    Rectangle,
    Tag,
    TagMeta,
)

H, W = 40, 50


def make_meta() -> ProjectMeta:
    classes = [
        ObjClass(title="bitmap", shape="bitmap", color="#FF0000", geometry_config={}, extra={}),
        ObjClass(title="poly", shape="polygon", color="#00FF00", geometry_config={}, extra={}),
        ObjClass(title="rect", shape="rectangle", color="#0000FF", geometry_config={}, extra={}),
        ObjClass(title="line", shape="line", color="#FFFF00", geometry_config={}, extra={}),
        ObjClass(title="point", shape="point", color="#00FFFF", geometry_config={}, extra={}),
    ]
    tags = [
        TagMeta(name="obj_tag", value_type="none", values=None, color=None, extra={}),
        TagMeta(name="img_tag", value_type="any_string", values=None, color=None, extra={}),
    ]
    return ProjectMeta(classes=classes, tag_metas=tags)


def make_ann(h: int = H, w: int = W) -> Annotation:
    """An annotation with every geometry: bitmap, polygon with a hole, rectangle, line, point."""
    mask = np.zeros((8, 6), bool)
    mask[1:7, 1:5] = True
    mask[3, 2] = False
    exterior = np.array([[20.0, 5.0], [40.0, 5.0], [40.0, 25.0], [20.0, 25.0]])
    hole = np.array([[25.0, 10.0], [30.0, 10.0], [30.0, 15.0], [25.0, 15.0]])
    labels = [
        Label("bitmap", Bitmap((2, 3), mask), tags=[Tag("obj_tag")]),
        Label("poly", Polygon(exterior, [hole])),
        Label("rect", Rectangle(5, 28, 15, 35)),
        Label("line", Polyline(np.array([[1.0, 1.0], [30.0, 38.0], [45.0, 20.0]]))),
        Label("point", Point(44.0, 33.0)),
    ]
    return Annotation(height=h, width=w, labels=labels, tags=[Tag("img_tag", "x")])


def make_image(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_element(**changes) -> Element:
    el = Element(
        image=ImageRef.from_array(make_image()),
        ann=make_ann(),
        project="proj",
        dataset="ds",
        item_name="img_01.png",
    )
    return el.replace(**changes)


def build_layer(action: str, settings: dict, *, meta: ProjectMeta | None = None, src=None, dst=None, index=1):
    """A validated layer with its metas computed from ``meta`` (default: make_meta())."""
    from unetkit.dtl.layers import get_layer

    cls = get_layer(action)
    if dst is None:
        dst = ["$a", "$b"] if cls.n_branches == 2 else ("out" if cls.is_save else "$out")
    if src is None:
        src = ["proj/*"] if cls.is_data else ["$in"]
    layer = parse_layer(index, {"action": action, "src": src, "dst": dst, "settings": settings})
    layer.output_meta(meta or make_meta())
    return layer


def run_layer(layer, el: Element, seed: int | None = 0) -> list[tuple[int, Element]]:
    """All (branch, element) pairs the layer yields for ``el``."""
    ctx = LayerContext(
        rng=derive_rng(seed, el.identity, layer.index, 0), in_meta=layer.in_meta, out_meta=layer.out_meta
    )
    return list(layer.process(el, ctx))


def write_project(path: Path, items: dict[str, dict[str, tuple]], meta: ProjectMeta | None = None) -> Path:
    """Write a project: {dataset: {item name: (image, annotation)}}."""
    writer = ProjectWriter(path, meta or make_meta())
    for ds, entries in items.items():
        for name, (image, ann) in entries.items():
            writer.add_item(ds, name, image, ann)
    return path


def write_graph(path: Path, graph: list) -> Path:
    path.write_text(json.dumps(graph), encoding="utf-8")
    return path


def read_tree(root: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file under ``root``."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
