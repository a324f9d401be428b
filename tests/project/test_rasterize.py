import numpy as np
import pytest

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
