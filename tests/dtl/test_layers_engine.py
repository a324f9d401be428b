"""Unit tests of the engine's layers (io, flow, classes) with exact expectations on image + every geometry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.errors import GraphError
from unetkit.project import Bitmap, Point, Rectangle, Tag

from .helpers import H, W, build_layer, make_element, make_meta, run_layer


def titles(el):
    return [lb.class_title for lb in el.ann.labels]


def only(outputs):
    assert len(outputs) == 1 and outputs[0][0] == 0
    return outputs[0][1]


# ------------------------------------------------------------------------------------------------ io
def test_data_default_mapping_keeps_everything_and_object_tags():
    el = make_element()
    out = only(run_layer(build_layer("data", {"classes_mapping": "default"}), el))
    assert titles(out) == ["bitmap", "poly", "rect", "line", "point"]
    assert out.ann.labels[0].tags == [Tag("obj_tag")]
    assert out.ann.labels[0].geometry == el.ann.labels[0].geometry
    assert out.image is el.image


def test_data_mapping_renames_ignores_and_normalises():
    layer = build_layer(
        "data", {"classes_mapping": {"poly": "shape", "rect": "__ignore__", "__other__": "__default__"}}
    )
    assert [c.title for c in layer.out_meta.classes] == ["bitmap", "line", "point", "shape"]
    el = make_element()
    outside = el.ann.labels[4].clone(geometry=Point(60.0, 10.0))
    el = el.replace(ann=el.ann.clone(labels=[*el.ann.labels, outside]))
    out = only(run_layer(layer, el))
    assert titles(out) == ["bitmap", "shape", "line", "point"]  # rect ignored, the outside point dropped


def test_data_layer_matches_listed_datasets():
    layer = build_layer("data", {"classes_mapping": "default"}, src=["proj/a", "proj/b"])
    assert layer.matches("proj", "a") and layer.matches("proj", "b")
    assert not layer.matches("proj", "c") and not layer.matches("other", "a")
    star = build_layer("data", {"classes_mapping": "default"}, src=["proj"])
    assert star.matches("proj", "anything")


@pytest.mark.parametrize("action", ["supervisely", "save"])
def test_save_layers_normalise_to_the_image(action):
    el = make_element()
    rect = el.ann.labels[2].clone(geometry=Rectangle(40, 30, 70, 60))  # sticks out right and bottom
    outside = el.ann.labels[4].clone(geometry=Point(-1.0, 5.0))
    el = el.replace(ann=el.ann.clone(labels=[*el.ann.labels, rect, outside]))
    layer = build_layer(action, {"whatever": 1} if action == "supervisely" else {})
    out = only(run_layer(layer, el))
    assert titles(out) == ["bitmap", "poly", "rect", "line", "point", "rect"]
    clipped = out.ann.labels[-1].geometry
    assert clipped == Rectangle(40, 30, W - 1, H - 1)
    assert layer.render_extras(out) == {}
    assert out.image is el.image


def test_save_visualize_side_by_side():
    el = make_element()
    layer = build_layer("save", {"visualize": True})
    out = only(run_layer(layer, el))
    vis = layer.render_extras(out)["visualize"]
    img = el.image.get()
    assert vis.shape == (H, 2 * W + 1, 3)
    assert np.array_equal(vis[:, :W], img)
    assert (vis[:, W] == [0, 255, 0]).all()
    overlay = vis[:, W + 1 :]
    # bitmap pixel (x=6, y=4): 50 % red; polygon hole pixel (27, 12): untouched; polygon (22, 7): 50 % green
    assert np.array_equal(overlay[4, 6], (img[4, 6].astype(int) + [255, 0, 0]) // 2)
    assert np.array_equal(overlay[12, 27], img[12, 27])
    assert np.array_equal(overlay[7, 22], (img[7, 22].astype(int) + [0, 255, 0]) // 2)
    # the rectangle is drawn as a 1 px contour: its border is blended, its inside is not
    assert np.array_equal(overlay[28, 10], (img[28, 10].astype(int) + [0, 0, 255]) // 2)
    assert np.array_equal(overlay[31, 10], img[31, 10])
    assert build_layer("save", {}).render_extras(out) == {}


def test_save_masks_machine_and_human():
    settings = {
        "masks_machine": True,
        "masks_human": True,
        "gt_machine_color": {"bitmap": [1, 1, 1], "poly": [2, 2, 2]},
        "gt_human_color": {"poly": [0, 0, 0]},
    }
    layer = build_layer("save_masks", settings)
    el = only(run_layer(layer, make_element()))
    extras = layer.render_extras(el)
    machine = extras["masks_machine"]
    assert machine.shape == (H, W, 3)
    assert machine[4, 3].tolist() == [1, 1, 1] and machine[7, 22].tolist() == [2, 2, 2]
    assert machine[12, 27].tolist() == [0, 0, 0]  # polygon hole
    assert machine[30, 10].tolist() == [0, 0, 0]  # rect has no colour: skipped
    assert set(np.unique(machine)) == {0, 1, 2}
    human = extras["masks_human"]
    img = el.image.get()
    # a pure black class colour is drawn as (1, 1, 1) so it stays visible
    assert np.array_equal(human[7, W + 1 + 22], (img[7, 22].astype(int) + 1) // 2)
    assert np.array_equal(human[4, W + 1 + 3], img[4, 3])  # bitmap has no human colour


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"masks_machine": False, "masks_human": False}, "settings.masks_machine"),
        ({"masks_machine": True, "masks_human": False}, "settings.gt_machine_color"),
        (
            {"masks_machine": True, "masks_human": False, "gt_machine_color": {"poly": [-1, 0, 0]}},
            "settings.gt_machine_color.poly",
        ),
        ({"masks_machine": True}, "settings.masks_human"),
    ],
)
def test_save_masks_errors(settings, key):
    with pytest.raises(GraphError) as info:
        build_layer("save_masks", settings)
    assert str(info.value).startswith(f"layer 1 (save_masks): {key}:")


# ---------------------------------------------------------------------------------------------- flow
def test_dummy_and_multiply():
    el = make_element()
    assert only(run_layer(build_layer("dummy", {}), el)) is el
    outs = run_layer(build_layer("multiply", {"multiply": 3}), el)
    assert [b for b, _ in outs] == [0, 0, 0] and all(o is el for _, o in outs)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"probability": 1}, True),
        ({"probability": 0}, False),
        ({"regex_names": ["^img_0", "zzz"]}, True),
        ({"regex_names": ["^01"]}, False),
        ({"project_datasets": ["proj/*"]}, True),
        ({"project_datasets": ["*/ds"]}, True),
        ({"project_datasets": ["other/ds", "proj/ds2"]}, False),
        ({"min_objects_count": 5}, True),
        ({"min_objects_count": 6}, False),
        ({"include_classes": ["zzz", "line"]}, True),
        ({"include_classes": ["zzz"]}, False),
        ({"tags": ["img_tag"]}, True),
        ({"tags": ["obj_tag"]}, False),  # object tags are not image tags
        ({"min_height": H}, True),
        ({"min_height": H + 1}, False),
        ({"min_width": W}, True),
        ({"min_width": W + 1}, False),
        ({"min_area": H * W}, True),
        ({"min_area": H * W + 1}, False),
        # polygon area = exterior shoelace (20 x 20 = 400, the hole is not subtracted); bitmap = 23 pixels
        ({"sum_object_area": 423, "classes": ["poly", "bitmap"]}, True),
        ({"sum_object_area": 424, "classes": ["poly", "bitmap"]}, False),
    ],
)
def test_if_conditions(condition, expected):
    el = make_element()
    outs = run_layer(build_layer("if", {"condition": condition}), el)
    assert [b for b, _ in outs] == [0 if expected else 1]
    assert outs[0][1] is el


def test_if_name_in_range_counts_in_range_images():
    layer = build_layer("if", {"condition": {"name_in_range": ["img_02", "img_05"], "frame_step": 2}})
    assert layer.order_dependent
    names = ["img_01.png", "img_02.png", "img_03.png", "img_09.png", "img_04.png", "img_05.png"]
    branches = [run_layer(layer, make_element(item_name=n))[0][0] for n in names]
    assert branches == [1, 0, 1, 1, 0, 1]


def test_if_probability_is_seeded_and_roughly_right():
    layer = build_layer("if", {"condition": {"probability": 0.5}})
    els = [make_element(lineage=((1, 0, i),)) for i in range(400)]
    first = [run_layer(layer, el, seed=7)[0][0] for el in els]
    assert first == [run_layer(layer, el, seed=7)[0][0] for el in els]
    assert 150 < first.count(0) < 250


@pytest.mark.parametrize(
    ("condition", "key"),
    [
        ({}, "settings.condition"),
        ({"probability": 0.5, "min_width": 3}, "settings.condition"),
        ({"probability": 1.5}, "settings.condition.probability"),
        ({"project_datasets": ["proj"]}, "settings.condition.project_datasets[0]"),
        ({"regex_names": ["("]}, "settings.condition.regex_names"),
        ({"sum_object_area": 3}, "settings.condition.classes"),
        ({"name_in_range": ["a", "b"], "frame_step": 0}, "settings.condition.frame_step"),
        ({"min_height": 2, "extra": 1}, "settings.condition.extra"),
    ],
)
def test_if_condition_errors(condition, key):
    with pytest.raises(GraphError) as info:
        build_layer("if", {"condition": condition})
    assert str(info.value).startswith(f"layer 1 (if): {key}:")


def test_dataset_layer():
    el = make_element()
    assert only(run_layer(build_layer("dataset", {"name": "new ds-1"}), el)).out_dataset == "new ds-1"
    renamed = el.replace(out_dataset="x")
    assert only(run_layer(build_layer("dataset", {"rule": "save_original"}), renamed)).out_dataset == "ds"
    for bad in ({"name": "a/b"}, {"name": "a", "rule": "save_original"}, {}, {"rule": "other"}):
        with pytest.raises(GraphError, match=r"^layer 1 \(dataset\): settings"):
            build_layer("dataset", bad)


# ------------------------------------------------------------------------------------------- classes
def test_rename():
    layer = build_layer(
        "rename", {"classes_mapping": {"poly": "shape", "point": "__ignore__", "rect": "__default__"}}
    )
    assert [c.title for c in layer.out_meta.classes] == ["bitmap", "rect", "line", "shape"]
    out = only(run_layer(layer, make_element()))
    assert titles(out) == ["bitmap", "shape", "rect", "line"]
    assert out.ann.labels[1].geometry == make_element().ann.labels[1].geometry


def test_rename_merges_classes_of_the_same_shape():
    meta = make_meta()
    layer = build_layer("rename", {"classes_mapping": {"bitmap": "merged"}}, meta=meta)
    layer2 = build_layer("rename", {"classes_mapping": {"merged": "bitmap"}}, meta=layer.out_meta)
    assert {c.title for c in layer2.out_meta.classes} == {c.title for c in meta.classes}


def test_drop_obj_by_class():
    layer = build_layer("drop_obj_by_class", {"classes": ["line", "point"]})
    assert [c.title for c in layer.out_meta.classes] == ["bitmap", "poly", "rect"]
    assert titles(only(run_layer(layer, make_element()))) == ["bitmap", "poly", "rect"]


def test_duplicate_objects():
    layer = build_layer("duplicate_objects", {"classes_mapping": {"bitmap": "bitmap_copy"}})
    copy_cls = layer.out_meta.get_class("bitmap_copy")
    assert (copy_cls.shape, copy_cls.color) == ("bitmap", "#FF0000")
    out = only(run_layer(layer, make_element()))
    assert titles(out) == ["bitmap", "bitmap_copy", "poly", "rect", "line", "point"]
    assert out.ann.labels[1].geometry == out.ann.labels[0].geometry
    assert out.ann.labels[1].tags == [Tag("obj_tag")]


def test_color_class():
    layer = build_layer("color_class", {"classes_color_mapping": {"rect": "#abcdef"}})
    assert layer.out_meta.get_class("rect").color == "#ABCDEF"
    assert layer.out_meta.get_class("poly").color == "#00FF00"
    el = make_element()
    assert only(run_layer(layer, el)) is el
    with pytest.raises(GraphError, match=r"settings.classes_color_mapping.rect: colour"):
        build_layer("color_class", {"classes_color_mapping": {"rect": "red"}})
    with pytest.raises(GraphError, match="Can not update class nope. Not found"):
        build_layer("color_class", {"classes_color_mapping": {"nope": "#000000"}})


def test_background():
    layer = build_layer("background", {"class": "bg"})
    assert layer.out_meta.classes[-1].title == "bg" and layer.out_meta.classes[-1].shape == "rectangle"
    out = only(run_layer(layer, make_element()))
    assert titles(out) == ["bg", "bitmap", "poly", "rect", "line", "point"]
    assert out.ann.labels[0].geometry == Rectangle(0, 0, W - 1, H - 1)
    with pytest.raises(GraphError, match=r"Trying to add new class \(poly\) with shape \(rectangle\)"):
        build_layer("background", {"class": "poly"})


def test_tag_add_and_delete():
    el = make_element()
    add = build_layer("tag", {"tag": "train", "action": "add"})
    assert add.out_meta.get_tag_meta("train").value_type == "none"
    assert only(run_layer(add, el)).ann.tags == [Tag("img_tag", "x"), Tag("train")]
    add_value = build_layer("tag", {"tag": {"name": "split", "value": "val"}, "action": "add"})
    assert add_value.out_meta.get_tag_meta("split").value_type == "any_string"
    assert only(run_layer(add_value, el)).ann.tags[-1] == Tag("split", "val")
    # fix: adding a tag with an identical value succeeds (the original raised)
    same = build_layer("tag", {"tag": {"name": "img_tag", "value": "x"}, "action": "add"})
    assert only(run_layer(same, el)).ann.tags == [Tag("img_tag", "x")]
    no_value = build_layer("tag", {"tag": "img_tag", "action": "add"})
    assert only(run_layer(no_value, el)).ann.tags == [Tag("img_tag", "x")]
    conflict = build_layer("tag", {"tag": {"name": "img_tag", "value": "y"}, "action": "add"})
    with pytest.raises(ValueError, match="conflicting value"):
        run_layer(conflict, el)
    delete = build_layer("tag", {"tag": "img_tag", "action": "delete"})
    assert delete.out_meta.get_tag_meta("img_tag") is None
    twice = el.replace(ann=el.ann.clone(tags=[Tag("img_tag", "x"), Tag("keep"), Tag("img_tag", "z")]))
    assert only(run_layer(delete, twice)).ann.tags == [Tag("keep")]
    assert el.ann.tags == [Tag("img_tag", "x")]  # the input element is untouched


def _filter(area_size, comparator, classes=("poly", "bitmap")):
    return {
        "filter_by": {
            "polygon_sizes": {
                "filtering_classes": list(classes),
                "area_size": area_size,
                "action": "delete",
                "comparator": comparator,
            }
        }
    }


@pytest.mark.parametrize(
    ("area_size", "comparator", "expected"),
    [
        # poly: 400 / 2000 = 20 %; bitmap: 23 / 2000 = 1.15 %
        ({"percent": 20}, "less", ["poly", "rect", "line", "point"]),
        ({"percent": 21}, "less", ["rect", "line", "point"]),
        ({"percent": 1.15}, "greater", ["bitmap", "rect", "line", "point"]),
        ({"percent": 20}, "greater", ["bitmap", "poly", "rect", "line", "point"]),
        # bitmap box 4 x 6, polygon box 20 x 20
        ({"width": 5, "height": 1}, "less", ["poly", "rect", "line", "point"]),
        ({"width": 4, "height": 6}, "less", ["bitmap", "poly", "rect", "line", "point"]),
        ({"width": 19, "height": 100}, "greater", ["bitmap", "rect", "line", "point"]),
    ],
)
def test_objects_filter(area_size, comparator, expected):
    layer = build_layer("objects_filter", _filter(area_size, comparator))
    assert titles(only(run_layer(layer, make_element()))) == expected


def test_objects_filter_remap_is_refused():
    settings = _filter({"percent": 1}, "less")
    settings["filter_by"]["polygon_sizes"]["action"] = {"remap_class": "x"}
    with pytest.raises(
        GraphError, match=r"settings.filter_by.polygon_sizes.action: remap_class is not implemented"
    ):
        build_layer("objects_filter", settings)


def test_layers_do_not_mutate_their_input():
    el = make_element()
    before = el.ann.to_json()
    for action, layer_settings in [
        ("rename", {"classes_mapping": {"poly": "p2"}}),
        ("duplicate_objects", {"classes_mapping": {"poly": "p2"}}),
        ("background", {"class": "bg"}),
        ("tag", {"tag": "t", "action": "add"}),
        ("drop_obj_by_class", {"classes": ["poly"]}),
    ]:
        run_layer(build_layer(action, layer_settings), el)
    assert el.ann.to_json() == before
    assert isinstance(el.ann.labels[0].geometry, Bitmap)


# ---------------------------------------------------------------------------------------- properties
PROPS = settings(max_examples=50, deadline=None)


@PROPS
@given(st.floats(0, 1), st.integers(0, 2**32), st.integers(1, 5))
def test_if_routes_every_copy_to_exactly_one_branch(p, seed, n):
    layer = build_layer("if", {"condition": {"probability": p}})
    copies = [o for _, o in run_layer(build_layer("multiply", {"multiply": n}), make_element())]
    branches = [run_layer(layer, c.replace(lineage=((1, 0, i),)), seed=seed) for i, c in enumerate(copies)]
    assert all(len(b) == 1 and b[0][0] in (0, 1) for b in branches)
    if p == 1:
        assert all(b[0][0] == 0 for b in branches)
    if p == 0:
        assert all(b[0][0] == 1 for b in branches)


@PROPS
@given(st.text("abcxyz_", min_size=1, max_size=8), st.sampled_from([None, "v1", "v2"]))
def test_tag_add_is_idempotent_and_delete_removes(name, value):
    tag = name if value is None else {"name": name, "value": value}
    add = build_layer("tag", {"tag": tag, "action": "add"})
    once = only(run_layer(add, make_element()))
    twice = only(run_layer(add, once))
    assert twice.ann.tags == once.ann.tags
    assert sum(t.name == name for t in once.ann.tags) == 1 or name == "img_tag"
    gone = only(run_layer(build_layer("tag", {"tag": name, "action": "delete"}), twice))
    assert all(t.name != name for t in gone.ann.tags)


@PROPS
@given(st.integers(1, 60), st.integers(1, 60))
def test_background_covers_the_image_and_drops_cleanly(h, w):
    el = make_element()
    el = el.replace(ann=el.ann.clone(height=h, width=w))
    out = only(run_layer(build_layer("background", {"class": "bg"}), el))
    assert out.ann.labels[0].geometry.to_json()["points"]["exterior"] == [[0, 0], [w - 1, h - 1]]
    back = only(
        run_layer(
            build_layer(
                "drop_obj_by_class",
                {"classes": ["bg"]},
                meta=build_layer("background", {"class": "bg"}).out_meta,
            ),
            out,
        )
    )
    assert back.ann.labels == el.ann.labels
