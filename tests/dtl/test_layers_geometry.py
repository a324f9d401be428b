"""Geometry layers (flip, crop, crop_annotation, resize, rotate, sliding_window, instances_crop,
resize_annotation, restore_annotation_scale): image + every geometry with exact expectations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unetkit.dtl import geometry_ops as ops
from unetkit.dtl.element import Element, ImageRef
from unetkit.errors import GraphError
from unetkit.project import Annotation, Bitmap, Label, Point, Polygon, Polyline, Rectangle, Tag, rasterize

from .helpers import build_layer, run_layer

H, W = 10, 12
INDEX = {"bitmap": 1, "poly": 2, "rect": 3, "line": 4, "point": 5}


def small_ann() -> Annotation:
    mask = np.array([[1, 1, 0], [1, 0, 1]], bool)
    labels = [
        Label("bitmap", Bitmap((1, 2), mask)),
        Label(
            "poly",
            Polygon([[4, 1], [10, 1], [10, 7], [4, 7]], [[[6, 3], [8, 3], [8, 5], [6, 5]]]),
            tags=[Tag("obj_tag")],
            description="d",
        ),
        Label("rect", Rectangle(0, 6, 3, 9)),
        Label("line", Polyline([[0, 8], [11, 8]])),
        Label("point", Point(11.0, 9.0)),
    ]
    return Annotation(height=H, width=W, labels=labels)


def small_image() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)


def element(ann=None, image=None) -> Element:
    img = small_image() if image is None else image
    return Element(ImageRef.from_array(img), ann or small_ann(), "proj", "ds", "img.png")


def run(action, settings, el=None, seed=0, meta=None):
    layer = build_layer(action, settings, meta=meta)
    return [e for _, e in run_layer(layer, el or element(), seed=seed)]


def one(outs):
    assert len(outs) == 1
    return outs[0]


def raster(ann):
    return rasterize(ann, INDEX)


def ring(a):
    """Vertices of a ring, order-free."""
    return sorted((float(x), float(y)) for x, y in a.tolist())


def geoms(el):
    return {lb.class_title: lb.geometry for lb in el.ann.labels}


# ------------------------------------------------------------------------------------------------ flip
def test_flip_vertical_mirrors_left_right_image_and_every_geometry():
    el = element()
    out = one(run("flip", {"axis": "vertical"}, el))
    assert np.array_equal(out.image.get(), el.image.get()[:, ::-1])
    g = geoms(out)
    assert g["bitmap"] == Bitmap((8, 2), np.array([[0, 1, 1], [1, 0, 1]], bool))
    assert g["poly"].exterior.tolist() == [[7, 1], [1, 1], [1, 7], [7, 7]]
    assert g["poly"].interiors[0].tolist() == [[5, 3], [3, 3], [3, 5], [5, 5]]
    assert g["rect"] == Rectangle(8, 6, 11, 9)
    assert g["line"].points.tolist() == [[11, 8], [0, 8]]
    assert g["point"] == Point(0.0, 9.0)
    assert out.ann.labels[1].tags == [Tag("obj_tag")] and out.ann.labels[1].description == "d"
    assert np.array_equal(raster(out.ann), raster(el.ann)[:, ::-1])


def test_flip_horizontal_turns_upside_down_like_the_original():
    el = element()
    out = one(run("flip", {"axis": "horizontal"}, el))
    assert np.array_equal(out.image.get(), el.image.get()[::-1])
    g = geoms(out)
    assert g["bitmap"] == Bitmap((1, 6), np.array([[1, 0, 1], [1, 1, 0]], bool))
    assert g["rect"] == Rectangle(0, 0, 3, 3)
    assert g["point"] == Point(11.0, 0.0)
    assert np.array_equal(raster(out.ann), raster(el.ann)[::-1])


def test_flip_rejects_unknown_axis():
    with pytest.raises(GraphError, match="axis"):
        build_layer("flip", {"axis": "diagonal"})


# ------------------------------------------------------------------------------------------------ crop
def test_crop_sides_pixels_and_percent():
    el = element()
    out = one(run("crop", {"sides": {"left": "2px", "top": "10%", "right": "25%", "bottom": "1px"}}, el))
    # window: left 2, top int(10 * 0.1) = 1, right 12 - int(12 * 0.25) = 9, bottom 10 - 1 = 9
    assert np.array_equal(out.image.get(), el.image.get()[1:9, 2:9])
    assert (out.ann.width, out.ann.height) == (7, 8)
    g = geoms(out)
    assert g["bitmap"] == Bitmap((0, 1), np.array([[1, 0], [0, 1]], bool))  # columns x=2, 3 survive
    assert ring(g["poly"].exterior) == [(2, 0), (2, 6), (6, 0), (6, 6)]
    assert ring(g["poly"].interiors[0]) == [(4, 2), (4, 4), (6, 2), (6, 4)]
    assert g["rect"] == Rectangle(0, 5, 1, 7)
    assert g["line"].points.tolist() == [[0, 7], [6, 7]]
    assert "point" not in g
    assert np.array_equal(raster(out.ann), raster(el.ann)[1:9, 2:9])


def test_crop_random_part_is_seeded_and_within_ranges():
    el = element()
    settings = {
        "random_part": {
            "width": {"min_percent": 40, "max_percent": 60},
            "height": {"min_percent": 70, "max_percent": 70},
        }
    }
    a = one(run("crop", settings, el, seed=3))
    b = one(run("crop", settings, el, seed=3))
    assert np.array_equal(a.image.get(), b.image.get())
    assert 4 <= a.ann.width <= 7 and a.ann.height == 7
    img = el.image.get()
    hits = [
        (x, y)
        for y in range(H - a.ann.height + 1)
        for x in range(W - a.ann.width + 1)
        if np.array_equal(img[y : y + a.ann.height, x : x + a.ann.width], a.image.get())
    ]
    (x, y) = hits[0]
    assert np.array_equal(raster(a.ann), raster(el.ann)[y : y + a.ann.height, x : x + a.ann.width])
    sizes = {one(run("crop", settings, el, seed=s)).ann.width for s in range(12)}
    assert len(sizes) > 1  # random


def test_crop_keep_aspect_ratio_uses_one_percent():
    rp = {"width": {"min_percent": 50, "max_percent": 50}, "height": {"min_percent": 50, "max_percent": 50}}
    out = one(run("crop", {"random_part": {**rp, "keep_aspect_ratio": True}}))
    assert (out.ann.width, out.ann.height) == (6, 5)


def test_crop_empty_window_drops_the_element():
    assert run("crop", {"sides": {"left": "60%", "right": "50%"}}) == []


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"sides": {"left": "1px"}, "random_part": {}}, "settings"),
        ({}, "settings"),
        ({"sides": {"left": "-1px"}}, "sides.left"),
        ({"sides": {"lft": "1px"}}, "sides.lft"),
        ({"sides": {"left": "1px"}, "extra": 1}, "extra"),
        (
            {
                "random_part": {
                    "width": {"min_percent": 60, "max_percent": 50},
                    "height": {"min_percent": 1, "max_percent": 2},
                }
            },
            "random_part.width",
        ),
        (
            {
                "random_part": {
                    "width": {"min_percent": 1, "max_percent": 5},
                    "height": {"min_percent": 1, "max_percent": 2},
                    "keep_aspect_ratio": True,
                }
            },
            "random_part",
        ),
        (
            {
                "random_part": {
                    "width": {"min_percent": 1, "max_percent": 101},
                    "height": {"min_percent": 1, "max_percent": 2},
                }
            },
            "random_part.width.max_percent",
        ),
    ],
)
def test_crop_settings_errors(settings, key):
    with pytest.raises(GraphError, match=key.replace(".", r"\.")):
        build_layer("crop", settings)


def test_crop_annotation_cuts_objects_but_not_the_image():
    el = element()
    out = one(
        run("crop_annotation", {"sides": {"left": "2px", "top": "1px", "right": "3px", "bottom": "1px"}}, el)
    )
    assert out.image is el.image and (out.ann.width, out.ann.height) == (W, H)
    g = geoms(out)
    assert g["bitmap"] == Bitmap((2, 2), np.array([[1, 0], [0, 1]], bool))
    assert g["rect"] == Rectangle(2, 6, 3, 8)
    assert g["line"].points.tolist() == [[2, 8], [8, 8]]
    assert ring(g["poly"].exterior) == [(4, 1), (4, 7), (8, 1), (8, 7)]
    assert "point" not in g
    want = raster(el.ann)
    mask = np.zeros_like(want)
    mask[1:9, 2:9] = 1
    assert np.array_equal(raster(out.ann), want * mask)


# ------------------------------------------------------------------------------------------------ resize
def test_resize_exact_size_doubles_every_geometry():
    el = element()
    out = one(run("resize", {"width": 24, "height": 20, "aspect_ratio": {"keep": False}}, el))
    assert np.array_equal(
        out.image.get(), cv2.resize(el.image.get(), (24, 20), interpolation=cv2.INTER_LINEAR)
    )
    g = geoms(out)
    assert g["bitmap"].origin == (2, 4) and g["bitmap"].mask.shape == (4, 6)
    assert g["rect"] == Rectangle(0, 12, 7, 19)
    assert g["point"] == Point(22.5, 18.5)
    assert g["line"].points.tolist() == [[0.5, 16.5], [22.5, 16.5]]
    for src, dst in zip(el.ann.labels[:1] + el.ann.labels[2:3], [g["bitmap"], g["rect"]]):
        want = cv2.resize(
            src.geometry.to_mask(H, W).astype(np.uint8), (24, 20), interpolation=cv2.INTER_NEAREST_EXACT
        )
        assert np.array_equal(dst.to_mask(20, 24), want.astype(bool))


def test_resize_keep_aspect_letterbox_and_minus_one():
    el = element()
    out = one(run("resize", {"width": 12, "height": 20, "aspect_ratio": {"keep": True}}, el))
    img = out.image.get()
    assert img.shape == (20, 12, 3) and (img[:5] == 0).all() and (img[15:] == 0).all()
    assert geoms(out)["rect"] == Rectangle(0, 11, 3, 14)
    out = one(run("resize", {"width": -1, "height": 5, "aspect_ratio": {"keep": True}}, el))
    assert out.image.get().shape == (5, 6, 3) and (out.ann.width, out.ann.height) == (6, 5)


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"width": 0, "height": 5, "aspect_ratio": {"keep": False}}, "width"),
        ({"width": -1, "height": -1, "aspect_ratio": {"keep": True}}, "width"),
        ({"width": -1, "height": 5, "aspect_ratio": {"keep": False}}, "aspect_ratio.keep"),
        ({"width": -2, "height": 5, "aspect_ratio": {"keep": True}}, "width"),
        ({"width": 5, "height": 5}, "aspect_ratio"),
    ],
)
def test_resize_settings_errors(settings, key):
    with pytest.raises(GraphError, match=key.replace(".", r"\.")):
        build_layer("resize", settings)


# ------------------------------------------------------------------------------------------------ rotate
def test_rotate_90_keep_is_exact_for_image_and_geometries():
    el = element()
    out = one(
        run(
            "rotate",
            {"rotate_angles": {"min_degrees": 90, "max_degrees": 90}, "black_regions": {"mode": "keep"}},
            el,
        )
    )
    assert np.array_equal(out.image.get(), np.rot90(el.image.get()))
    assert (out.ann.width, out.ann.height) == (H, W)
    assert geoms(out)["point"] == Point(9.0, 0.0)
    assert geoms(out)["rect"] == Rectangle(6, 8, 9, 11)
    assert np.array_equal(raster(out.ann), np.rot90(raster(el.ann)))


def test_rotate_modes_and_random_angle():
    el = element()
    crop = one(
        run(
            "rotate",
            {"rotate_angles": {"min_degrees": 20, "max_degrees": 20}, "black_regions": {"mode": "crop"}},
            el,
        )
    )
    plan = ops.rotation_frame(W, H, 20.0, "crop")
    assert (crop.ann.width, crop.ann.height) == plan.size and plan.size[0] < W
    assert np.array_equal(crop.image.get(), ops.rotate_image(el.image.get(), plan))
    assert crop.ann == ops.rotate_annotation_with(el.ann, plan)
    same = one(
        run(
            "rotate",
            {
                "rotate_angles": {"min_degrees": -5, "max_degrees": 5},
                "black_regions": {"mode": "preserve_size"},
            },
            el,
        )
    )
    assert same.image.get().shape == (H, W, 3)
    with pytest.raises(GraphError, match="min_degrees"):
        build_layer(
            "rotate",
            {"rotate_angles": {"min_degrees": 5, "max_degrees": 1}, "black_regions": {"mode": "keep"}},
        )


# ------------------------------------------------------------------------------------------------ sliding_window
def test_sliding_window_grid_row_major_with_clamped_last_window():
    el = element()
    outs = run("sliding_window", {"window": {"height": 6, "width": 5}, "min_overlap": {"x": 1, "y": 0}}, el)
    # x: 0, 4, then 8 clamped to 7; y: 0, then 6 clamped to 4
    windows = [(0, 0), (4, 0), (7, 0), (0, 4), (4, 4), (7, 4)]
    assert len(outs) == len(windows)
    full = raster(el.ann)
    for out, (x, y) in zip(outs, windows):
        assert np.array_equal(out.image.get(), el.image.get()[y : y + 6, x : x + 5])
        assert np.array_equal(raster(out.ann), full[y : y + 6, x : x + 5])
    assert geoms(outs[0])["bitmap"] == Bitmap((1, 2), np.array([[1, 1, 0], [1, 0, 1]], bool))
    with pytest.raises(RuntimeError, match="larger"):
        run("sliding_window", {"window": {"height": 11, "width": 5}, "min_overlap": {"x": 0, "y": 0}}, el)
    with pytest.raises(GraphError, match="overlap"):
        build_layer("sliding_window", {"window": {"height": 4, "width": 4}, "min_overlap": {"x": 4, "y": 0}})


# ------------------------------------------------------------------------------------------------ instances_crop
def test_instances_crop_one_output_per_instance_with_padding():
    ann = small_ann()
    ann.labels.append(Label("poly", Polygon([[0, 0], [2, 0], [2, 1]])))
    el = element(ann)
    layer = build_layer(
        "instances_crop",
        {"classes": ["poly"], "save_classes": ["point"], "pad": {"sides": {"left": "1px", "right": "50%"}}},
    )
    assert [c.title for c in layer.out_meta.classes] == ["poly", "point"]
    outs = [e for _, e in run_layer(layer, el)]
    assert len(outs) == 2
    first = outs[0]  # poly box 4..10 x 1..7 -> window (3, 1, 12, 8)
    assert np.array_equal(first.image.get(), el.image.get()[1:8, 3:12])
    assert [lb.class_title for lb in first.ann.labels] == ["poly"]  # the point at y=9 is outside
    assert first.ann.labels[0].tags == [Tag("obj_tag")]
    assert first.ann.labels[0].geometry.exterior.tolist() == [[1, 0], [7, 0], [7, 6], [1, 6]]
    second = outs[1]  # box 0..2 x 0..1 (3 px wide) -> window (0, 0, 3 + int(1.5), 2)
    assert second.image.get().shape == (2, 4, 3)
    assert [lb.class_title for lb in second.ann.labels] == ["poly"]
    with pytest.raises(GraphError, match="empty"):
        build_layer("instances_crop", {"classes": [], "pad": {"sides": {}}})
    with pytest.raises(GraphError, match="intersect"):
        build_layer("instances_crop", {"classes": ["poly"], "save_classes": ["poly"], "pad": {"sides": {}}})


# ------------------------------------------------------------------------------------------------ resize_annotation
def test_resize_annotation_then_restore_is_exact_for_a_double_scale():
    el = element()
    out = one(run("resize_annotation", {"width": 24, "height": 20, "aspect_ratio": {"keep": False}}, el))
    assert out.image is el.image and (out.ann.width, out.ann.height) == (W, H)
    assert out.ann.extra["ann_size_wh"] == [24, 20]
    assert geoms(out)["rect"] == Rectangle(0, 12, 7, 19)
    assert "ann_size_wh" not in el.ann.extra
    back = one(run("restore_annotation_scale", {}, out))
    assert "ann_size_wh" not in back.ann.extra
    assert back.ann == el.ann


def test_resize_annotation_only_selected_classes():
    el = element()
    out = one(
        run(
            "resize_annotation",
            {"classes": ["point"], "width": 24, "height": 20, "aspect_ratio": {"keep": False}},
            el,
        )
    )
    g = geoms(out)
    assert g["point"] == Point(22.5, 18.5) and g["rect"] == Rectangle(0, 6, 3, 9)
    assert one(run("restore_annotation_scale", {"classes": ["rect"]}, out)).ann.labels[4].geometry == Point(
        22.5, 18.5
    )
    assert one(run("restore_annotation_scale", {}, el)).ann == el.ann  # nothing to restore
