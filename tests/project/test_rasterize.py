import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point as ShPoint
from shapely.geometry import Polygon as ShPolygon

from unetkit.errors import FormatError
from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    Point,
    Polygon,
    Polyline,
    Rectangle,
    colorize_index_mask,
    rasterize,
    render_overlay,
)

from .helpers import sample_annotation, sample_meta


def test_rectangle_is_inclusive():
    canvas = np.zeros((5, 6), np.int32)
    Rectangle(1, 1, 3, 2).draw(canvas, 4)
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 4, 4, 4, 0, 0],
            [0, 4, 4, 4, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ]
    )
    assert np.array_equal(canvas, expected)
    assert Rectangle(1, 1, 3, 2).area() == 6


def test_polygon_hole_keeps_previous_value():
    # Era-B SDK: holes are cleared in a scratch mask, so what was under the hole stays.
    canvas = np.full((7, 7), 9, np.int32)
    Polygon([[0, 0], [6, 0], [6, 6], [0, 6]], [[[2, 2], [4, 2], [4, 4], [2, 4]]]).draw(canvas, 1)
    expected = np.ones((7, 7), np.int32)
    expected[2:5, 2:5] = 9
    assert np.array_equal(canvas, expected)


def test_line_and_point_are_one_pixel():
    canvas = np.zeros((4, 5), np.uint8)
    Polyline([[0, 0], [4, 0], [4, 3]]).draw(canvas, 1)
    Point(1, 2).draw(canvas, 2)
    expected = np.array([[1, 1, 1, 1, 1], [0, 0, 0, 0, 1], [0, 2, 0, 0, 1], [0, 0, 0, 0, 1]])
    assert np.array_equal(canvas, expected)


def test_bitmap_clipped_to_canvas():
    canvas = np.zeros((3, 3), np.int32)
    Bitmap((-1, 1), np.ones((3, 3), bool)).draw(canvas, 5)
    assert canvas.tolist() == [[0, 0, 0], [5, 5, 0], [5, 5, 0]]


def test_rasterize_order_later_wins_and_unknown_class():
    ann = Annotation(
        4,
        4,
        [Label("box", Rectangle(0, 0, 3, 3)), Label("dot", Point(1, 1)), Label("box", Rectangle(3, 3, 3, 3))],
    )
    out = rasterize(ann, {"box": 1, "dot": 2})
    assert out.dtype == np.int32
    assert out.tolist() == [[1, 1, 1, 1], [1, 2, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    with pytest.raises(FormatError, match=r"\$\.objects\[1\]\.classTitle.*'dot'"):
        rasterize(ann, {"box": 1})
    assert rasterize(ann, {"box": 1}, skip_unknown=True, default=7, dtype=np.uint8).tolist() == [[1] * 4] * 4


def test_render_overlay_and_colorize():
    ann = sample_annotation()
    image = np.full((ann.height, ann.width, 3), 100, np.uint8)
    out = render_overlay(image, ann, sample_meta(), alpha=0.5)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert out[7, 7].tolist() == [50, 178, 178]  # point "dot" #00FFFF over grey 100
    assert out[19, 0].tolist() == [100, 100, 100]  # untouched
    idx = rasterize(ann, {"lemon": 1, "road": 2, "box": 3, "edge": 4, "dot": 5})
    col = colorize_index_mask(idx, {2: (0, 255, 0)})
    assert col[1, 15].tolist() == [0, 255, 0] and col[0, 0].tolist() == [0, 0, 0]


# Golden arrays below were produced with cv2.fillPoly (the SDK's drawing) and checked by eye.
TRIANGLE_GOLDEN = """
0000000000
0111100000
0111111110
0011111100
0011111000
0001100000
0001000000
0000000000
"""

HOLE_GOLDEN = """
222222222
222222222
222222222
222000222
222002222
222202222
222222222
222222222
222222222
"""


def _golden(text):
    return np.array([[int(c) for c in row] for row in text.split()])


def test_golden_triangle():
    canvas = np.zeros((8, 10), np.int32)
    Polygon([[1, 1], [8, 2], [3, 6]]).draw(canvas, 1)
    assert np.array_equal(canvas, _golden(TRIANGLE_GOLDEN))


def test_golden_polygon_with_hole_via_rasterize():
    ann = Annotation(
        9, 9, [Label("road", Polygon([[0, 0], [8, 0], [8, 8], [0, 8]], [[[3, 3], [5, 3], [4, 5]]]))]
    )
    assert np.array_equal(rasterize(ann, {"road": 2}), _golden(HOLE_GOLDEN))


# ---------------------------------------------------------------------------------------- properties

coord = st.integers(-5, 30)


@settings(max_examples=50, deadline=None)
@given(coord, coord, coord, coord)
def test_axis_aligned_polygon_equals_inclusive_rectangle(x0, y0, x1, y1):
    left, r, t, b = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    a = np.zeros((25, 25), np.uint8)
    c = np.zeros((25, 25), np.uint8)
    Polygon([[left, t], [r, t], [r, b], [left, b]]).draw(a, 1)
    Rectangle(left, t, r, b).draw(c, 1)
    assert np.array_equal(a, c)
    inside = (max(left, 0), max(t, 0), min(r, 24), min(b, 24))
    expected = (
        0
        if inside[0] > inside[2] or inside[1] > inside[3]
        else (inside[2] - inside[0] + 1) * (inside[3] - inside[1] + 1)
    )
    assert a.sum() == expected


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=3, max_size=8),
    st.integers(-3, 3),
    st.integers(-3, 3),
)
def test_polygon_rasterisation_properties(points, dx, dy):
    poly = Polygon(points)
    a = np.zeros((30, 30), np.uint8)
    poly.draw(a, 1)
    # translation equivariance (everything stays inside the canvas)
    b = np.zeros((30, 30), np.uint8)
    poly.translate(dx + 4, dy + 4).draw(b, 1)
    assert np.array_equal(np.roll(a, (dy + 4, dx + 4), axis=(0, 1)), b)
    # drawn pixels lie in the polygon's bbox; convex polygons cover every pixel centre well inside them
    ys, xs = np.nonzero(a)
    box = poly.bbox()
    assert (
        (xs >= box.left).all()
        and (xs <= box.right).all()
        and (ys >= box.top).all()
        and (ys <= box.bottom).all()
    )
    hull = ShPolygon(points).convex_hull
    if hull.geom_type == "Polygon":
        convex = Polygon(np.asarray(hull.exterior.coords)[:-1])
        c = np.zeros((30, 30), np.uint8)
        convex.draw(c, 1)
        for y in range(30):
            for x in range(30):
                p = ShPoint(x, y)
                if hull.contains(p) and hull.exterior.distance(p) > 1.0:
                    assert c[y, x] == 1, (x, y)
                if c[y, x]:
                    assert hull.distance(p) <= 1.0, (x, y)
        assert c[a == 1].all()  # the hull covers the polygon


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10), st.integers(0, 10), st.integers(3, 8), st.integers(3, 8))
def test_hole_pixels_keep_canvas_and_outside_unchanged(x, y, w, h):
    before = np.arange(30 * 30, dtype=np.int32).reshape(30, 30) % 7 + 10
    canvas = before.copy()
    ext = [[x, y], [x + w + 6, y], [x + w + 6, y + h + 6], [x, y + h + 6]]
    hole = [[x + 3, y + 3], [x + w + 3, y + 3], [x + w + 3, y + h + 3], [x + 3, y + h + 3]]
    Polygon(ext, [hole]).draw(canvas, 1)
    ring = np.zeros((30, 30), bool)
    ring[y : y + h + 7, x : x + w + 7] = True
    ring[y + 3 : y + h + 4, x + 3 : x + w + 4] = False
    assert (canvas[ring] == 1).all()
    assert np.array_equal(canvas[~ring], before[~ring])
