"""Domain-specific layers (contour boxes, line filters, merge_lines, road_lines, find_cracknets)."""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.errors import GraphError
from unetkit.project import Annotation, Label, Polygon, Polyline, Rectangle, Tag

from .helpers import build_layer, run_layer
from .test_layers_geometry import element, geoms, one, run, small_ann


def lines_of(el, title="line"):
    return [lb.geometry.points.tolist() for lb in el.ann.labels if lb.class_title == title]


def test_contour_sliding_box_boxes_along_polygon_contours():
    layer = build_layer(
        "contour_sliding_box",
        {
            "box": {"width": "3px", "height": "3px"},
            "distance": "6px",
            "classes": ["poly"],
            "box_class": "box",
        },
    )
    new = layer.out_meta.get_class("box")
    assert (new.shape, new.color) == ("rectangle", "#00EE00")
    el = element()
    out = one([e for _, e in run_layer(layer, el)])
    titles = [lb.class_title for lb in out.ann.labels]
    assert titles == ["bitmap", "poly", "box", "box", "box", "box", "rect", "line", "point"]
    # contour points every 6 px from (4, 1): (10, 1), (10, 7), (4, 7), (4, 1); boxes kept inside the image
    boxes = [lb.geometry for lb in out.ann.labels if lb.class_title == "box"]
    assert boxes == [
        Rectangle(9, 0, 11, 2),
        Rectangle(9, 6, 11, 8),
        Rectangle(3, 6, 5, 8),
        Rectangle(3, 0, 5, 2),
    ]
    assert out.image is el.image
    with pytest.raises(ValueError, match="Polygon"):
        run(
            "contour_sliding_box",
            {
                "box": {"width": "3px", "height": "3px"},
                "distance": "50%",
                "classes": ["rect"],
                "box_class": "box",
            },
        )
    with pytest.raises(GraphError, match="distance"):
        build_layer(
            "contour_sliding_box",
            {
                "box": {"width": "3px", "height": "3px"},
                "distance": "6",
                "classes": ["poly"],
                "box_class": "box",
            },
        )


def _with_lines(*lines):
    ann = small_ann()
    for i, pts in enumerate(lines):
        ann.labels.append(Label("line", Polyline(pts), tags=[Tag("obj_tag")] if i == 0 else []))
    return element(ann)


def test_drop_lines_by_length_min_max_invert_and_compensation():
    el = _with_lines([[0, 0], [3, 0]])  # plus the 11-px line of the base annotation
    assert lines_of(one(run("drop_lines_by_length", {"lines_class": "line", "min_length": 5}, el))) == [
        [[0, 8], [11, 8]]
    ]
    kept = one(run("drop_lines_by_length", {"lines_class": "line", "min_length": 5, "invert": True}, el))
    assert lines_of(kept) == [[[0, 0], [3, 0]]]
    assert lines_of(one(run("drop_lines_by_length", {"lines_class": "line", "max_length": 5}, el))) == [
        [[0, 0], [3, 0]]
    ]
    # compensation: 500 * 12 / 1000 = 6 px
    comp = one(
        run(
            "drop_lines_by_length",
            {"lines_class": "line", "min_length": 500, "resolution_compensation": True},
            el,
        )
    )
    assert lines_of(comp) == [[[0, 8], [11, 8]]]
    assert geoms(comp)["poly"] == el.ann.labels[1].geometry
    with pytest.raises(GraphError, match="min_length"):
        build_layer("drop_lines_by_length", {"lines_class": "line"})


def test_drop_lines_under_polygon_cuts_lines_and_respects_holes():
    el = _with_lines([[0, 4], [11, 4]])
    out = one(run("drop_lines_under_polygon", {"lines_class": "line", "polygons_class": "poly"}, el))
    titles = [lb.class_title for lb in out.ann.labels]
    assert titles == ["bitmap", "poly", "rect", "point", "line", "line", "line", "line"]
    pieces = lines_of(out)
    assert pieces[0] == [[0, 8], [11, 8]]  # not under the polygon
    assert sorted(pieces[1:]) == [[[0, 4], [4, 4]], [[6, 4], [8, 4]], [[10, 4], [11, 4]]]
    assert all(lb.tags == [Tag("obj_tag")] for lb in out.ann.labels[5:])


def test_merge_lines_joins_collinear_neighbours_only():
    el = _with_lines([[0, 5], [4, 5]], [[6, 5], [11, 5]], [[5, 0], [5, 3]])
    settings = {
        "maximal_angle": 20,
        "max_ends_distance": "3px",
        "max_ortho_distance_coefficient": 0.5,
        "lines_class": "line",
    }
    out = one(run("merge_lines", settings, el))
    merged = lines_of(out)
    assert [[0, 5], [4, 5], [6, 5], [11, 5]] in merged
    assert [[5, 0], [5, 3]] in merged and [[0, 8], [11, 8]] in merged and len(merged) == 3
    joined = next(lb for lb in out.ann.labels if lb.class_title == "line" and len(lb.geometry.points) == 4)
    assert joined.tags == [Tag("obj_tag")]
    far = one(run("merge_lines", {**settings, "max_ends_distance": "1px"}, el))
    assert len(lines_of(far)) == 4
    with pytest.raises(GraphError, match="maximal_angle"):
        build_layer("merge_lines", {**settings, "maximal_angle": 200})


def test_road_lines_adds_left_and_right_borders():
    layer = build_layer("road_lines", {"road_class": "poly", "road_lines_class": "road_line"})
    assert layer.out_meta.get_class("road_line").color == "#000088"
    out = one([e for _, e in run_layer(layer, element())])
    assert [lb.class_title for lb in out.ann.labels][:4] == ["bitmap", "poly", "road_line", "road_line"]
    assert lines_of(out, "road_line") == [[[4, 1], [4, 7]], [[10, 1], [10, 7]]]
    small = one(
        run("road_lines", {"road_class": "poly", "road_lines_class": "road_line", "min_road_area": 10**6})
    )
    assert lines_of(small, "road_line") == []
    with pytest.raises(ValueError, match="Polygon"):
        run("road_lines", {"road_class": "rect", "road_lines_class": "road_line"})


CRACK_SETTINGS = {
    "crack_class": "line",
    "cracknet_class": "cracknet",
    "mask_resolution": 50,
    "loop_devide_eps": 2,
    "min_area_in_bbox_coef": 0.3,
    "min_poly_bbox_area_coef": 0.01,
    "enable_subclustering": False,
    "min_points_in_cluster": 5,
}


def _cracks():
    lines = [Label("line", Polyline([[x, y] for x in range(10, 41, 3)])) for y in range(10, 41, 3)]
    lines.append(Label("line", Polyline([[80, 80], [95, 95]])))  # an isolated crack
    img = np.zeros((100, 100, 3), np.uint8)
    return element(Annotation(100, 100, lines), image=img)


def test_find_cracknets_wraps_dense_crack_networks():
    layer = build_layer("find_cracknets", CRACK_SETTINGS)
    assert layer.out_meta.get_class("cracknet").shape == "polygon"
    out = one([e for _, e in run_layer(layer, _cracks())])
    nets = [lb.geometry for lb in out.ann.labels if lb.class_title == "cracknet"]
    assert len(nets) == 1 and isinstance(nets[0], Polygon)
    box = nets[0].bbox()
    assert 6 <= box.left <= 12 and 6 <= box.top <= 12 and 38 <= box.right <= 44 and 38 <= box.bottom <= 44
    assert len(out.ann.labels) == 13
    clustered = one(
        run(
            "find_cracknets",
            {**CRACK_SETTINGS, "enable_subclustering": True, "min_points_in_cluster": 122},
            _cracks(),
        )
    )
    assert not any(lb.class_title == "cracknet" for lb in clustered.ann.labels)
    kept = one(run("find_cracknets", {**CRACK_SETTINGS, "enable_subclustering": True}, _cracks()))
    assert sum(lb.class_title == "cracknet" for lb in kept.ann.labels) == 1
    with pytest.raises(ValueError, match="Line"):
        run("find_cracknets", {**CRACK_SETTINGS, "crack_class": "poly"})
    with pytest.raises(GraphError, match="mask_resolution"):
        build_layer("find_cracknets", {**CRACK_SETTINGS, "mask_resolution": 0})
