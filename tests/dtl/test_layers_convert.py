"""Geometry conversion layers: image + every geometry with exact expectations."""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.dtl.executor import derive_rng
from unetkit.errors import GraphError
from unetkit.project import Bitmap, Label, ObjClass, Point, Polygon, Polyline, Rectangle, Tag

from .helpers import build_layer, make_meta, run_layer
from .test_layers_geometry import H, W, element, geoms, one, run, small_ann


def meta_with(*extra: tuple[str, str]):
    meta = make_meta()
    more = [ObjClass(title=t, shape=s, color="#808080", geometry_config={}, extra={}) for t, s in extra]
    return meta.clone(classes=meta.classes + more)


def mask_of(label_or_geom, h=H, w=W):
    g = getattr(label_or_geom, "geometry", label_or_geom)
    return g.to_mask(h, w)


def untouched(out, el, *titles):
    src = {lb.class_title: lb for lb in el.ann.labels}
    for t in titles:
        assert geoms(out)[t] == src[t].geometry


# ------------------------------------------------------------------------------------------------ bbox
def test_bbox_replaces_objects_by_their_pixel_box_and_keeps_tags():
    el = element()
    layer = build_layer(
        "bbox", {"classes_mapping": {"poly": "poly_box", "bitmap": "bm_box", "point": "pt_box"}}
    )
    assert {c.title: c.shape for c in layer.out_meta.classes}["poly_box"] == "rectangle"
    assert "poly" not in [c.title for c in layer.out_meta.classes]
    out = one([e for _, e in run_layer(layer, el)])
    assert out.image is el.image
    assert [lb.class_title for lb in out.ann.labels] == ["bm_box", "poly_box", "rect", "line", "pt_box"]
    g = geoms(out)
    assert g["poly_box"] == Rectangle(4, 1, 10, 7)
    assert g["bm_box"] == Rectangle(1, 2, 3, 3)
    assert g["pt_box"] == Rectangle(11, 9, 11, 9)
    assert out.ann.labels[1].tags == [Tag("obj_tag")] and out.ann.labels[1].description == "d"
    untouched(out, el, "rect", "line")


def test_bbox2poly_turns_rectangles_into_polygons_and_rejects_other_shapes():
    el = element()
    out = one(run("bbox2poly", {"classes_mapping": {"rect": "rect_poly"}}, el))
    poly = geoms(out)["rect_poly"]
    assert poly.exterior.tolist() == [[0, 6], [0, 9], [3, 9], [3, 6]]
    assert np.array_equal(mask_of(poly), mask_of(el.ann.labels[2]))
    untouched(out, el, "bitmap", "poly", "line", "point")
    with pytest.raises(ValueError, match="Rectangle"):
        run("bbox2poly", {"classes_mapping": {"poly": "x"}}, el)


def test_poly2bitmap_rasterises_every_geometry():
    el = element()
    out = one(
        run(
            "poly2bitmap", {"classes_mapping": {"poly": "pm", "line": "lm", "point": "ptm", "rect": "rm"}}, el
        )
    )
    g = geoms(out)
    expected_poly = np.ones((7, 7), bool)
    expected_poly[2:5, 2:5] = False  # the hole clears its pixels, border included
    assert g["pm"] == Bitmap((4, 1), expected_poly)
    assert g["lm"] == Bitmap((0, 8), np.ones((1, 12), bool))
    assert g["ptm"] == Bitmap((11, 9), np.ones((1, 1), bool))
    assert g["rm"] == Bitmap((0, 6), np.ones((4, 4), bool))
    assert out.ann.labels[1].tags == [Tag("obj_tag")]
    untouched(out, el, "bitmap")


def test_line2bitmap_draws_outlines_with_width():
    el = element()
    out = one(
        run("line2bitmap", {"classes_mapping": {"line": "lm", "point": "pm", "rect": "rm"}, "width": 3}, el)
    )
    g = geoms(out)
    assert g["lm"] == Bitmap((0, 6), np.ones((4, 12), bool))  # OpenCV's 3-px thick line
    assert g["pm"] == Bitmap(
        (9, 7), np.array([[0, 0, 1], [0, 1, 1], [1, 1, 1]], bool)
    )  # circle radius 2, clipped
    rm = g["rm"].full_mask(H, W)
    assert rm[6:10, 0:4].all()
    assert not rm[:4].any()
    with pytest.raises(GraphError, match="width"):
        build_layer("line2bitmap", {"classes_mapping": {"line": "lm"}, "width": 0})


def test_rasterize_makes_non_overlapping_masks_after_the_other_objects():
    ann = small_ann()
    ann.labels.append(Label("rect", Rectangle(8, 0, 11, 3), tags=[Tag("obj_tag")]))
    el = element(ann)
    out = one(run("rasterize", {"classes_mapping": {"poly": "pr", "rect": "rr"}}, el))
    assert [lb.class_title for lb in out.ann.labels] == ["bitmap", "line", "point", "pr", "rr", "rr"]
    pr, rr1, rr2 = (lb.geometry.full_mask(H, W) for lb in out.ann.labels[3:])
    assert not (pr & rr2).any() and not (pr & rr1).any()
    poly_mask = mask_of(ann.labels[1])
    later_rect = mask_of(ann.labels[5])
    assert np.array_equal(pr, poly_mask & ~later_rect)
    assert np.array_equal(rr2, later_rect)
    assert out.ann.labels[3].tags == [Tag("obj_tag")] and out.ann.labels[5].tags == [Tag("obj_tag")]


def test_find_contours_gives_polygons_with_holes_that_rasterise_back():
    mask = np.zeros((6, 7), bool)
    mask[0:5, 0:5] = True
    mask[2, 2] = False  # a one-pixel hole
    mask[5, 6] = True  # a one-pixel speck: kept as a degenerate polygon
    ann = small_ann()
    ann.labels[0] = Label("bitmap", Bitmap((3, 2), mask), tags=[Tag("obj_tag")])
    el = element(ann)
    out = one(run("find_contours", {"classes_mapping": {"bitmap": "bp"}}, el))
    bp = [lb for lb in out.ann.labels if lb.class_title == "bp"]
    assert len(bp) == 2 and bp[0].tags == [Tag("obj_tag")]
    poly = next(lb.geometry for lb in bp if len(lb.geometry.interiors))
    assert sorted(map(tuple, poly.exterior.tolist())) == [(3, 2), (3, 6), (7, 2), (7, 6)]
    assert poly.interiors[0].tolist() == [[5, 4]] * 3
    got = mask_of(bp[0]) | mask_of(bp[1])
    assert np.array_equal(got, mask_of(ann.labels[0]))
    out = one(run("find_contours", {"classes_mapping": {"bitmap": "bp"}, "approx_epsilon": 1.0}, el))
    assert len([lb for lb in out.ann.labels if lb.class_title == "bp"]) == 2
    with pytest.raises(ValueError, match="Bitmap"):
        run("find_contours", {"classes_mapping": {"poly": "x"}}, el)


def test_approx_vector_simplifies_polygons_and_lines():
    ann = small_ann()
    ann.labels[1] = Label("poly", Polygon([[4, 1], [7, 1.3], [10, 1], [10, 7], [4, 7]]))
    ann.labels[3] = Label("line", Polyline([[0, 8], [5, 8.4], [11, 8]]))
    el = element(ann)
    out = one(run("approx_vector", {"classes": ["poly", "line"], "epsilon": 1.0}, el))
    assert sorted(map(tuple, geoms(out)["poly"].exterior.tolist())) == [(4, 1), (4, 7), (10, 1), (10, 7)]
    assert geoms(out)["line"].points.tolist() == [[0, 8], [11, 8]]
    untouched(out, el, "bitmap", "rect", "point")
    with pytest.raises(ValueError, match="Polygon or a Line"):
        run("approx_vector", {"classes": ["rect"], "epsilon": 1.0}, el)
    with pytest.raises(GraphError, match="epsilon"):
        build_layer("approx_vector", {"classes": ["poly"], "epsilon": 0})


def test_bitmap2lines_follows_thin_masks():
    mask = np.zeros((5, 6), bool)
    mask[0, 0:6] = True  # a horizontal stroke ...
    mask[1:5, 5] = True  # ... turning down: one path of 10 pixels
    ann = small_ann()
    ann.labels[0] = Label("bitmap", Bitmap((1, 1), mask))
    out = one(run("bitmap2lines", {"classes_mapping": {"bitmap": "bl"}, "min_points_cnt": 2}, element(ann)))
    lines = [lb.geometry for lb in out.ann.labels if lb.class_title == "bl"]
    assert len(lines) == 1
    pixels = {(x + 1, 1) for x in range(6)} | {(6, y + 1) for y in range(1, 5)}
    pts = list(map(tuple, lines[0].points.tolist()))
    assert set(pts) <= pixels and len(pts) >= 9  # the spanning tree may cut the corner pixel
    assert all(max(abs(a[0] - b[0]), abs(a[1] - b[1])) == 1 for a, b in zip(pts, pts[1:]))
    assert {pts[0], pts[-1]} == {(1, 1), (6, 5)}
    out = one(run("bitmap2lines", {"classes_mapping": {"bitmap": "bl"}, "min_points_cnt": 11}, element(ann)))
    assert "bl" not in geoms(out)
    with pytest.raises(GraphError, match="min_points_cnt"):
        build_layer("bitmap2lines", {"classes_mapping": {"bitmap": "bl"}, "min_points_cnt": 1})


def test_skeletonize_thins_a_bar():
    bar = np.ones((3, 9), bool)
    ann = small_ann()
    ann.labels[0] = Label("bitmap", Bitmap((1, 1), bar), tags=[Tag("obj_tag")])
    out = one(run("skeletonize", {"classes": ["bitmap"], "method": "thinning"}, element(ann)))
    assert out.ann.labels[0].geometry == Bitmap((2, 2), np.ones((1, 7), bool))  # the middle row
    assert out.ann.labels[0].tags == [Tag("obj_tag")]
    for method in ("skeletonization", "medial_axis"):
        out = one(run("skeletonize", {"classes": ["bitmap"], "method": method}, element(ann)))
        sk = out.ann.labels[0].geometry.full_mask(H, W)
        assert sk.sum() < bar.sum() and not (sk & ~mask_of(ann.labels[0])).any()
    with pytest.raises(GraphError, match="method"):
        build_layer("skeletonize", {"classes": ["bitmap"], "method": "erode"})


def test_split_masks_one_bitmap_per_8_connected_part():
    ann = small_ann()
    ann.labels[0] = Label(
        "bitmap",
        Bitmap((1, 2), np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1]], bool)),
        tags=[Tag("obj_tag")],
    )
    out = one(run("split_masks", {"classes": ["bitmap"]}, element(ann)))
    parts = [lb for lb in out.ann.labels if lb.class_title == "bitmap"]
    assert [p.geometry for p in parts] == [
        Bitmap((1, 2), np.array([[1, 1, 0], [0, 0, 1]], bool)),
        Bitmap((1, 5), np.ones((1, 1), bool)),
        Bitmap((4, 5), np.ones((1, 1), bool)),
    ]
    assert all(p.tags == [Tag("obj_tag")] for p in parts)
    with pytest.raises(ValueError, match="Bitmap"):
        run("split_masks", {"classes": ["poly"]}, element(ann))


def test_drop_noise_removes_small_4_connected_parts():
    mask = np.zeros((5, 8), bool)
    mask[0:3, 0:3] = True  # 9 px
    mask[4, 5] = True  # 1 px
    mask[3, 3] = True  # touches the block only diagonally: its own 4-connected part
    ann = small_ann()
    ann.labels[0] = Label("bitmap", Bitmap((0, 0), mask))
    out = one(
        run("drop_noise", {"classes": ["bitmap"], "min_area": "2px", "src_type": "image"}, element(ann))
    )
    assert geoms(out)["bitmap"] == Bitmap((0, 0), np.ones((3, 3), bool))
    # 10 % of the object's box (5 x 8 = 40 px) = 4 px
    out = one(run("drop_noise", {"classes": ["bitmap"], "min_area": "10%", "src_type": "bbox"}, element(ann)))
    assert geoms(out)["bitmap"] == Bitmap((0, 0), np.ones((3, 3), bool))
    out = one(
        run("drop_noise", {"classes": ["bitmap"], "min_area": "10%", "src_type": "image"}, element(ann))
    )
    assert "bitmap" not in geoms(out)  # 10 % of 120 px = 12 px > 9 px
    with pytest.raises(GraphError, match="min_area"):
        build_layer("drop_noise", {"classes": ["bitmap"], "min_area": "2", "src_type": "image"})


@pytest.mark.parametrize("op", ["or", "and", "nor"])
def test_bitwise_masks_or_and_nor(op):
    meta = meta_with(("bitmap2", "bitmap"))
    a = np.zeros((H, W), bool)
    a[0:4, 0:4] = True
    b = np.zeros((H, W), bool)
    b[2:6, 2:6] = True
    ann = small_ann()
    ann.labels[0] = Label("bitmap", Bitmap.from_full_mask(a))
    ann.labels.append(Label("bitmap2", Bitmap.from_full_mask(b), tags=[Tag("obj_tag")]))
    layer = build_layer(
        "bitwise_masks", {"type": op, "class_mask": "bitmap", "classes_to_correct": ["bitmap2"]}, meta=meta
    )
    out = one([e for _, e in run_layer(layer, element(ann))])
    want = {"or": a | b, "and": a & b, "nor": ~(a | b)}[op]
    assert np.array_equal(geoms(out)["bitmap2"].full_mask(H, W), want)
    assert out.ann.labels[-1].tags == [Tag("obj_tag")]
    assert geoms(out)["bitmap"] == ann.labels[0].geometry


def test_bitwise_masks_without_mask_object_is_a_no_op():
    ann = small_ann()
    ann.labels = ann.labels[1:]
    el = element(ann)
    out = one(
        run("bitwise_masks", {"type": "or", "class_mask": "bitmap", "classes_to_correct": ["poly"]}, el)
    )
    assert out.ann == el.ann


def test_merge_bitmap_masks_unions_and_moves_to_the_end():
    meta = make_meta()
    ann = small_ann()
    ann.labels.append(Label("bitmap", Bitmap((9, 0), np.ones((2, 2), bool)), tags=[Tag("obj_tag")]))
    layer = build_layer("merge_bitmap_masks", {"class": "bitmap"}, meta=meta)
    out = one([e for _, e in run_layer(layer, element(ann))])
    assert [lb.class_title for lb in out.ann.labels] == ["poly", "rect", "line", "point", "bitmap"]
    want = mask_of(ann.labels[0]) | mask_of(ann.labels[-1])
    assert np.array_equal(out.ann.labels[-1].geometry.full_mask(H, W), want)
    assert out.ann.labels[-1].tags == [Tag("obj_tag")]
    single = one(run("merge_bitmap_masks", {"class": "bitmap"}))
    assert single.ann.labels[-1] == small_ann().labels[0]
    with pytest.raises(ValueError, match="Bitmap"):
        run("merge_bitmap_masks", {"class": "poly"})


def test_generate_hints_samples_points_inside_and_outside():
    settings = {"class": "rect", "positive_class": "pos", "negative_class": "neg", "min_points_number": 2}
    layer = build_layer("generate_hints", settings)
    assert [(c.title, c.shape) for c in layer.out_meta.classes[-2:]] == [("pos", "point"), ("neg", "point")]
    el = element()
    out = one([e for _, e in run_layer(layer, el, seed=5)])
    rect = mask_of(el.ann.labels[2])
    rng = derive_rng(5, el.identity, layer.index, 0)
    n_pos, n_neg = int(rng.exponential(2.0)) + 2, int(rng.exponential(2.0)) + 2
    pos = [lb.geometry for lb in out.ann.labels if lb.class_title == "pos"]
    neg = [lb.geometry for lb in out.ann.labels if lb.class_title == "neg"]
    assert (len(pos), len(neg)) == (n_pos, n_neg)
    assert all(rect[int(p.y), int(p.x)] for p in pos) and not any(rect[int(p.y), int(p.x)] for p in neg)
    assert len({(p.x, p.y) for p in pos}) == len(pos)
    assert out.ann.labels[:5] == el.ann.labels
    with pytest.raises(GraphError, match="min_points_number"):
        build_layer("generate_hints", {**settings, "min_points_number": -1})


def test_point_hints_are_capped_by_available_pixels():
    ann = small_ann()
    ann.labels[4] = Label("point", Point(0.0, 0.0))
    settings = {"class": "point", "positive_class": "pos", "negative_class": "neg", "min_points_number": 5}
    out = one(run("generate_hints", settings, element(ann)))
    assert sum(lb.class_title == "pos" for lb in out.ann.labels) == 1
