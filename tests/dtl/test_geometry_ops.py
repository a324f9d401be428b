"""Properties and exact cases of the geometry transforms (flip / crop / resize / rotate / normalise)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon as ShapelyPolygon

from unetkit.dtl import geometry_ops as ops
from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    Point,
    Polygon,
    Polyline,
    RawGeometry,
    Rectangle,
    rasterize,
)

PROPS = settings(max_examples=50, deadline=None)
H, W = 17, 23


# ------------------------------------------------------------------------------------------ strategies
@st.composite
def bitmaps(draw):
    mh, mw = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    bits = draw(st.lists(st.booleans(), min_size=mh * mw, max_size=mh * mw))
    mask = np.array(bits, bool).reshape(mh, mw)
    if not mask.any():
        mask[0, 0] = True
    return Bitmap((draw(st.integers(-3, W - 2)), draw(st.integers(-3, H - 2))), mask)


@st.composite
def rectangles(draw):
    x0, x1 = sorted(draw(st.lists(st.integers(-3, W + 2), min_size=2, max_size=2)))
    y0, y1 = sorted(draw(st.lists(st.integers(-3, H + 2), min_size=2, max_size=2)))
    return Rectangle(x0, y0, x1, y1)


@st.composite
def box_polygons(draw):
    """Axis-aligned integer polygons: a box or an L shape (their rasterisation is exact under every transform)."""
    x0, x1 = sorted(draw(st.lists(st.integers(-3, W + 2), min_size=2, max_size=2, unique=True)))
    y0, y1 = sorted(draw(st.lists(st.integers(-3, H + 2), min_size=2, max_size=2, unique=True)))
    if draw(st.booleans()) or x1 - x0 < 2 or y1 - y0 < 2:
        return Polygon([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    xm, ym = draw(st.integers(x0 + 1, x1 - 1)), draw(st.integers(y0 + 1, y1 - 1))
    return Polygon([[x0, y0], [xm, y0], [xm, ym], [x1, ym], [x1, y1], [x0, y1]])


@st.composite
def holed_boxes(draw):
    """An integer box with a box hole strictly inside it."""
    x0, y0 = draw(st.integers(-3, W - 6)), draw(st.integers(-3, H - 6))
    x1, y1 = draw(st.integers(x0 + 4, W + 2)), draw(st.integers(y0 + 4, H + 2))
    hx0, hy0 = draw(st.integers(x0 + 1, x1 - 3)), draw(st.integers(y0 + 1, y1 - 3))
    hx1, hy1 = draw(st.integers(hx0 + 1, x1 - 1)), draw(st.integers(hy0 + 1, y1 - 1))
    hole = [[hx0, hy0], [hx1, hy0], [hx1, hy1], [hx0, hy1]]
    return Polygon([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], [hole])


@st.composite
def polygons(draw):
    """Any simple (valid) integer polygon."""
    pts = draw(st.lists(st.tuples(st.integers(-3, W + 2), st.integers(-3, H + 2)), min_size=3, max_size=6))
    shp = ShapelyPolygon(pts)
    assume(shp.is_valid and shp.area > 0)
    return Polygon(np.array(pts, float))


@st.composite
def axis_lines(draw):
    """Polylines made of horizontal / vertical integer segments."""
    x, y = draw(st.integers(-3, W + 2)), draw(st.integers(-3, H + 2))
    pts = [(x, y)]
    for i in range(draw(st.integers(1, 4))):
        if i % 2 == 0:
            x = draw(st.integers(-3, W + 2))
        else:
            y = draw(st.integers(-3, H + 2))
        pts.append((x, y))
    return Polyline(np.array(pts, float))


@st.composite
def lines(draw):
    pts = draw(st.lists(st.tuples(st.integers(-3, W + 2), st.integers(-3, H + 2)), min_size=2, max_size=5))
    return Polyline(np.array(pts, float))


points = st.builds(Point, st.integers(-2, W + 1).map(float), st.integers(-2, H + 1).map(float))
exact_geometries = st.one_of(bitmaps(), rectangles(), box_polygons(), holed_boxes(), axis_lines(), points)
any_geometries = st.one_of(bitmaps(), rectangles(), polygons(), lines(), points)
windows = st.tuples(st.integers(0, W - 1), st.integers(0, H - 1), st.integers(1, W), st.integers(1, H)).map(
    lambda t: (t[0], t[1], max(t[0] + 1, t[2]), max(t[1] + 1, t[3]))
)


def ann_of(*geoms, h=H, w=W) -> Annotation:
    return Annotation(height=h, width=w, labels=[Label(f"c{i}", g) for i, g in enumerate(geoms)])


def raster(ann: Annotation) -> np.ndarray:
    return rasterize(ann, {lb.class_title: int(lb.class_title[1:]) + 1 for lb in ann.labels})


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, (Point, Rectangle)):
        return a == b
    return a == b


# ------------------------------------------------------------------------------------------ flip
@PROPS
@given(g=any_geometries, axis=st.sampled_from(ops.AXES))
def test_flip_twice_is_identity_for_every_geometry(g, axis):
    assert same(ops.flip_geometry(ops.flip_geometry(g, axis, W, H), axis, W, H), g)


@PROPS
@given(axis=st.sampled_from(ops.AXES), seed=st.integers(0, 1000))
def test_flip_twice_is_identity_for_the_image(axis, seed):
    img = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    assert np.array_equal(ops.flip_image(ops.flip_image(img, axis), axis), img)


@PROPS
@given(g=exact_geometries, axis=st.sampled_from(ops.AXES))
def test_flip_then_rasterise_equals_rasterise_then_flip(g, axis):
    ann = ann_of(g)
    assert np.array_equal(raster(ops.flip_annotation(ann, axis)), ops.flip_image(raster(ann), axis))


def test_flip_axis_keeps_the_original_meaning():
    img = np.arange(6).reshape(2, 3)
    assert ops.flip_image(img, "horizontal").tolist() == [[3, 4, 5], [0, 1, 2]]  # upside down
    assert ops.flip_image(img, "vertical").tolist() == [[2, 1, 0], [5, 4, 3]]  # left-right
    assert ops.flip_geometry(Point(1, 0), "horizontal", 3, 2) == Point(1, 1)
    assert ops.flip_geometry(Point(0, 1), "vertical", 3, 2) == Point(2, 1)


# ------------------------------------------------------------------------------------------ crop
@PROPS
@given(g=exact_geometries, win=windows)
def test_crop_then_rasterise_equals_rasterise_then_crop(g, win):
    ann = ann_of(g)
    left, top, right, bottom = win
    cropped = ops.crop_annotation(ann, *win)
    assert (cropped.width, cropped.height) == (right - left, bottom - top)
    assert np.array_equal(raster(cropped), raster(ann)[top:bottom, left:right])


@PROPS
@given(g=any_geometries, win=windows)
def test_crop_of_any_geometry_stays_inside_and_close(g, win):
    """General polygons / slanted lines: pieces lie inside the new image; rasterisations agree away from edges."""
    ann = ann_of(g)
    left, top, right, bottom = win
    cropped = ops.crop_annotation(ann, *win)
    for lb in cropped.labels:
        box = lb.geometry.bbox()
        assert (
            box.left >= 0
            and box.top >= 0
            and box.right <= right - left - 1
            and box.bottom <= bottom - top - 1
        )
    full = raster(ann) > 0
    diff = (raster(cropped) > 0) ^ full[top:bottom, left:right]
    # only pixels on the object's border may differ (vertices created by the cut are rounded)
    kernel = np.ones((3, 3), np.uint8)
    border = cv2.dilate(full.astype(np.uint8), kernel).astype(bool) & cv2.dilate(
        (~full).astype(np.uint8), kernel
    ).astype(bool)
    assert border[top:bottom, left:right][diff].all()


def test_crop_splits_a_polygon_and_keeps_tags_and_description():
    u = Polygon([[0, 0], [10, 0], [10, 10], [7, 10], [7, 3], [3, 3], [3, 10], [0, 10]])
    ann = Annotation(12, 12, [Label("u", u, tags=["t"], description="d")])
    out = ops.crop_annotation(ann, 0, 5, 12, 12)
    assert len(out.labels) == 2
    assert all(lb.tags == ["t"] and lb.description == "d" for lb in out.labels)
    boxes = sorted((b.left, b.top, b.right, b.bottom) for b in (lb.geometry.bbox() for lb in out.labels))
    assert boxes == [(0, 0, 3, 5), (7, 0, 10, 5)]


def test_crop_line_may_split_and_points_outside_are_dropped():
    line = Polyline([[0, 2], [9, 2], [9, 8], [0, 8]])
    out = ops.crop_geometry(line, 5, 0, 20, 20)
    assert [p.points.tolist() for p in out] == [[[5, 2], [9, 2], [9, 8], [5, 8]]]
    out = ops.crop_geometry(line, 0, 4, 20, 20)
    assert [p.points.tolist() for p in out] == [[[9, 4], [9, 8], [0, 8]]]
    out = ops.crop_geometry(Polyline([[0, 2], [4, 2], [4, 9], [8, 9], [8, 2], [12, 2]]), 0, 5, 20, 20)
    assert [p.points.tolist() for p in out] == [[[4, 5], [4, 9], [8, 9], [8, 5]]]
    assert ops.crop_geometry(Point(4.0, 4.0), 5, 0, 10, 10) == []
    assert ops.crop_geometry(Point(5.0, 4.0), 5, 0, 10, 10) == [Point(5.0, 4.0)]
    assert ops.crop_geometry(Point(10.0, 4.0), 5, 0, 10, 10) == []  # exclusive right


def test_crop_without_shift_keeps_size_and_coordinates():
    ann = ann_of(Rectangle(0, 0, 10, 10))
    out = ops.crop_annotation(ann, 2, 3, 8, 9, shift=False)
    assert (out.width, out.height) == (W, H)
    assert out.labels[0].geometry == Rectangle(2, 3, 7, 8)


def test_graph_geometry_follows_the_transforms():
    g = RawGeometry("graph", {"nodes": {"a": {"loc": [1, 2]}, "b": {"loc": [8, 9], "disabled": True}}})
    flipped = ops.flip_geometry(g, "vertical", 10, 10)
    assert flipped.payload["nodes"] == {"a": {"loc": [8, 2]}, "b": {"loc": [1, 9], "disabled": True}}
    (cropped,) = ops.crop_geometry(g, 0, 0, 5, 5)
    assert cropped.payload["nodes"] == {"a": {"loc": [1, 2]}}
    assert g.payload["nodes"]["a"]["loc"] == [1, 2]  # input untouched
    with pytest.raises(ValueError, match="cuboid"):
        ops.flip_geometry(RawGeometry("cuboid", {"points": []}), "vertical", 10, 10)


# ------------------------------------------------------------------------------------------ resize
@PROPS
@given(
    gs=st.lists(st.one_of(bitmaps(), rectangles()), min_size=1, max_size=3),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
)
def test_resize_of_masks_stays_binary_and_matches_nearest_resize(gs, size):
    ann = ann_of(*gs)
    out = ops.resize_annotation(ann, *size)
    assert (out.width, out.height) == size
    for lb in ann.labels:
        src = lb.geometry.to_mask(H, W).astype(np.uint8)
        want = cv2.resize(src, size, interpolation=cv2.INTER_NEAREST_EXACT)
        got = np.zeros((size[1], size[0]), np.uint8)
        for x in out.labels:
            if x.class_title == lb.class_title:
                x.geometry.draw(got, 1)
        assert set(np.unique(got)) <= {0, 1}
        assert np.array_equal(got, want), lb


def test_resize_keep_aspect_letterbox():
    plan = ops.resize_frame(40, 20, 30, 30, keep_aspect=True)
    assert (plan.size, plan.content, plan.offset) == ((30, 30), (30, 15), (0, 7))
    img = np.full((20, 40, 3), 200, np.uint8)
    out = ops.resize_image(img, plan)
    assert out.shape == (30, 30, 3)
    assert (out[:7] == 0).all() and (out[22:] == 0).all() and (out[7:22] == 200).all()
    ann = ann_of(Rectangle(0, 0, 39, 19), Point(0.0, 0.0), h=20, w=40)
    res = ops.resize_annotation(ann, 30, 30, keep_aspect=True)
    assert res.labels[0].geometry == Rectangle(0, 7, 29, 21)
    assert res.labels[1].geometry == Point(-0.125, 6.875)
    plan = ops.resize_frame(40, 20, -1, 10, keep_aspect=True)
    assert (plan.size, plan.offset) == ((20, 10), (0, 0))
    with pytest.raises(ValueError):
        ops.resize_frame(40, 20, -1, 10)


# ------------------------------------------------------------------------------------------ rotate
@PROPS
@given(g=exact_geometries, k=st.integers(0, 3))
def test_rotation_by_right_angles_is_exact(g, k):
    ann = ann_of(g)
    out, matrix, size = ops.rotate_annotation(ann, 90 * k, "keep")
    assert size == ((W, H) if k % 2 == 0 else (H, W))
    assert np.array_equal(raster(out), np.rot90(raster(ann), k))


def test_rotate_modes_sizes_and_image():
    img = np.full((20, 40, 3), 255, np.uint8)
    for angle in (10.0, 33.0, -60.0):
        keep = ops.rotation_frame(40, 20, angle, "keep")
        crop = ops.rotation_frame(40, 20, angle, "crop")
        same = ops.rotation_frame(40, 20, angle, "preserve_size")
        assert same.size == (40, 20)
        assert crop.size[0] < 40 and crop.size[1] < 20
        c, s = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
        assert keep.size == (int(np.ceil(40 * c + 20 * s)), int(np.ceil(40 * s + 20 * c)))
        inner = ops.rotate_image(img, crop)
        assert inner.min() > 200  # no black corner survives the crop
        outer = ops.rotate_image(img, keep)
        assert outer[0, 0].max() == 0 and (outer > 200).sum() >= 0.95 * img.size
    rotated = ops.rotate_image(
        np.arange(6, dtype=np.uint8).reshape(2, 3), ops.rotation_frame(3, 2, 90, "keep")
    )
    assert rotated.tolist() == np.rot90(np.arange(6).reshape(2, 3)).tolist()


def test_rotated_rectangle_becomes_pixel_box_of_its_corners():
    matrix = cv2.getRotationMatrix2D((7.0, 7.0), 45, 1.0)
    (r,) = ops.affine_geometry(Rectangle(5, 5, 9, 9), matrix, 15, 15)
    assert (r.left, r.top, r.right, r.bottom) == (4, 4, 10, 10)  # 7 -+ 2.5 * sqrt(2)
    out, _, size = ops.rotate_annotation(ann_of(Rectangle(5, 5, 9, 9), h=15, w=15), 45, "preserve_size")
    assert size == (15, 15) and out.labels[0].geometry.width == 8  # canvas 22 wide: centre lands on 6.5


# ------------------------------------------------------------------------------------------ normalise
def test_normalize_annotation_rules():
    big = np.ones((4, 4), bool)
    ann = ann_of(
        Bitmap((-2, -2), big),
        Bitmap((30, 1), big),
        Rectangle(-5, 3, 40, 8),
        Polyline([[-5, 2], [30, 2]]),
        Point(22.0, 16.0),
        Point(23.0, 16.0),
        Polygon([[-5, -5], [50, -5], [50, 50]]),
    )
    out = ops.normalize_annotation(ann)
    geoms = [lb.geometry for lb in out.labels]
    assert geoms[0] == Bitmap((0, 0), np.ones((2, 2), bool))
    assert geoms[1] == Rectangle(0, 3, 22, 8)
    assert geoms[2].points.tolist() == [[0, 2], [22, 2]]
    assert geoms[3] == Point(22.0, 16.0)
    assert geoms[4] == ann.labels[-1].geometry  # polygons are not clipped
    assert [lb.class_title for lb in out.labels] == ["c0", "c2", "c3", "c4", "c6"]


# ------------------------------------------------------------------------------------------ real data
@pytest.mark.parametrize(
    "name", ["lemons_annotated", "legacy_sdk_tutorial_project", "roads_annotated_subset"]
)
def test_real_annotations_stay_aligned_under_flip_crop_and_rotation(sly_samples_dir, name):
    """Bitmaps and rectangles are exact; real polygons differ only in a few edge pixels (slanted edges)."""
    from unetkit.project import Project

    project = Project.read(sly_samples_dir / name)
    index = {c.title: i + 1 for i, c in enumerate(project.meta.classes)}
    for item in list(project.items())[:2]:
        ann = ops.normalize_annotation(item.read_annotation(project.meta))
        vector = any(lb.geometry.name in ("polygon", "line") for lb in ann.labels)
        tolerance = 5e-4 if vector else 0.0
        full = rasterize(ann, index)
        win = (ann.width // 5, ann.height // 4, ann.width * 3 // 4, ann.height * 4 // 5)
        flipped = rasterize(ops.flip_annotation(ann, "vertical"), index)
        cropped = rasterize(ops.crop_annotation(ann, *win), index)
        rotated = rasterize(ops.rotate_annotation(ann, 90, "keep")[0], index)
        assert (flipped != full[:, ::-1]).mean() <= tolerance
        assert (cropped != full[win[1] : win[3], win[0] : win[2]]).mean() <= tolerance
        assert (rotated != np.rot90(full)).mean() <= tolerance
