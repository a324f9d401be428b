"""Contract test over every registered layer: all 48 original actions exist (docs/original-behaviour.md, "DTL layers"),
each has example settings, and each runs on an element with image + every geometry, producing valid elements
that match its output meta."""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.dtl.element import Element
from unetkit.dtl.layers import FAMILIES
from unetkit.dtl.registry import LAYERS
from unetkit.project import Annotation

from .helpers import build_layer, make_element, run_layer

ALL_ACTIONS = {
    # io, flow, classes (engine)
    "data", "supervisely", "save", "save_masks", "dummy", "multiply", "if", "dataset", "rename",
    "drop_obj_by_class", "duplicate_objects", "color_class", "background", "tag", "objects_filter",
    # conversions
    "bbox", "bbox2poly", "poly2bitmap", "line2bitmap", "rasterize", "find_contours", "approx_vector",
    "bitmap2lines", "skeletonize", "split_masks", "drop_noise", "bitwise_masks", "merge_bitmap_masks",
    "generate_hints",
    # image + annotation geometry
    "flip", "crop", "crop_annotation", "resize", "rotate", "sliding_window", "instances_crop",
    "resize_annotation", "restore_annotation_scale",
    # pixels
    "noise", "blur", "contrast_brightness", "random_color",
    # domain specific
    "contour_sliding_box", "drop_lines_by_length", "drop_lines_under_polygon", "merge_lines", "road_lines",
    "find_cracknets",
}  # fmt: skip


def example_settings() -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for module in FAMILIES:
        for action, settings in getattr(module, "EXAMPLE_SETTINGS", {}).items():
            assert action not in merged, f"EXAMPLE_SETTINGS for {action!r} given twice"
            merged[action] = settings
    return merged


def test_every_action_of_the_original_is_registered():
    assert len(ALL_ACTIONS) == 48
    assert set(LAYERS) == ALL_ACTIONS


def test_every_registered_action_has_example_settings():
    examples = example_settings()
    assert sorted(set(LAYERS) - set(examples)) == []
    assert sorted(set(examples) - set(LAYERS)) == []


def _snapshot(el: Element):
    return el.ann.to_json(), el.image.get().copy()


@pytest.mark.parametrize("action", sorted(ALL_ACTIONS))
def test_layer_runs_on_every_geometry(action):
    layer = build_layer(action, example_settings()[action])
    el = make_element()
    before_ann, before_img = _snapshot(el)
    outputs = run_layer(layer, el, seed=3)
    assert outputs, f"{action} produced nothing for the example element"
    for branch, out in outputs:
        assert isinstance(out, Element)
        assert 0 <= branch < layer.n_branches
        img = out.image.get()
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        if "ann_size_wh" not in out.ann.extra:
            assert img.shape[:2] == (out.ann.height, out.ann.width)
        for label in out.ann.labels:
            obj_class = layer.out_meta.get_class(label.class_title)
            assert obj_class is not None, (
                f"{action}: class {label.class_title!r} missing from the output meta"
            )
            assert obj_class.shape in (label.geometry.name, "any")
        for tag in out.ann.tags:
            assert layer.out_meta.get_tag_meta(tag.name) is not None, (
                f"{action}: tag {tag.name!r} not in meta"
            )
        # the output is a valid annotation for the output meta (coordinates may be rounded on reading)
        parsed = Annotation.from_json(out.ann.to_json(), layer.out_meta)
        assert [lb.class_title for lb in parsed.labels] == [lb.class_title for lb in out.ann.labels]
    after_ann, after_img = _snapshot(el)
    assert after_ann == before_ann and np.array_equal(after_img, before_img), f"{action} mutated its input"
    again = run_layer(build_layer(action, example_settings()[action]), make_element(), seed=3)
    assert [(b, o.ann.to_json()) for b, o in again] == [(b, o.ann.to_json()) for b, o in outputs]
    assert all(np.array_equal(a.image.get(), b.image.get()) for (_, a), (_, b) in zip(again, outputs))


@pytest.mark.parametrize(
    ("action", "settings", "new_class"),
    [
        ("bbox", {"classes_mapping": {"bitmap": "box"}}, "box"),
        ("poly2bitmap", {"classes_mapping": {"bitmap": "mask"}}, "mask"),
        ("rasterize", {"classes_mapping": {"bitmap": "raster"}}, "raster"),
        ("find_contours", {"classes_mapping": {"bitmap": "contour"}}, "contour"),
        ("bitmap2lines", {"classes_mapping": {"bitmap": "lines"}, "min_points_cnt": 2}, "lines"),
        ("split_masks", {"classes": ["bitmap"]}, "bitmap"),
        ("skeletonize", {"classes": ["bitmap"], "method": "skeletonization"}, "bitmap"),
        ("drop_noise", {"classes": ["bitmap"], "min_area": "2px", "src_type": "image"}, "bitmap"),
    ],
)
def test_conversions_keep_object_tags(action, settings, new_class):
    """Fix: the original lost object tags whenever a layer built a new figure."""
    outputs = run_layer(build_layer(action, settings), make_element(), seed=0)
    converted = [lb for _, out in outputs for lb in out.ann.labels if lb.class_title == new_class]
    assert converted and all([t.name for t in lb.tags] == ["obj_tag"] for lb in converted)
