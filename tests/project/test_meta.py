import pytest

from unetkit.errors import FormatError
from unetkit.project import ProjectMeta, color_to_rgb, random_color, rgb_to_color


def test_classes_and_tags_round_trip_with_extra_keys():
    d = {
        "classes": [
            {
                "title": "lemon",
                "shape": "bitmap",
                "color": "#ff0000",
                "geometry_config": {},
                "id": 3,
                "hotkey": "l",
            },
            {"title": "pose", "shape": "graph", "color": "#00FF00", "geometry_config": {"nodes": {"a": {}}}},
        ],
        "tags": [
            "plain",
            {"name": "weather", "value_type": "oneof_string", "values": ["sun", "rain"], "color": "#A0A08C"},
            {"name": "n", "value_type": "any_number", "applicable_type": "imagesOnly"},
        ],
        "projectType": "images",
    }
    meta = ProjectMeta.from_json(d)
    assert meta.get_class("lemon").extra == {"id": 3, "hotkey": "l"}
    assert meta.get_class("lemon").color == "#FF0000"  # writer emits uppercase
    assert meta.get_tag_meta("plain").value_type == "none"
    out = meta.to_json()
    assert out["tags"][0] == "plain"  # bare-string form kept
    assert out["tags"][2] == {"name": "n", "value_type": "any_number", "applicable_type": "imagesOnly"}
    assert out["projectType"] == "images"
    assert out["classes"][1]["geometry_config"] == {"nodes": {"a": {}}}
    assert ProjectMeta.from_json(out) == meta


def test_legacy_tag_lists_are_merged_and_kept():
    d = {"classes": [], "tags_images": ["train", "val"], "tags_objects": ["occluded", "train"]}
    meta = ProjectMeta.from_json(d)
    assert [t.name for t in meta.tag_metas] == ["train", "val", "occluded"]
    assert meta.to_json() == {
        "classes": [],
        "tags_images": ["train", "val"],
        "tags_objects": ["occluded", "train"],
    }
    changed = meta.clone(tag_metas=meta.tag_metas[:1])
    assert changed.to_json()["tags"] == ["train"]


def test_class_without_color_gets_a_stable_one():
    a = ProjectMeta.from_json({"classes": [{"title": "x", "shape": "polygon"}]})
    b = ProjectMeta.from_json({"classes": [{"title": "x", "shape": "polygon"}]})
    assert a.classes[0].color == b.classes[0].color
    color_to_rgb(a.classes[0].color)


@pytest.mark.parametrize(
    "meta, path, message",
    [
        (
            {"classes": [{"title": "a", "shape": "bitmap", "color": "#FF0000"}] * 2},
            "$.classes[1].title",
            "duplicate class title 'a'",
        ),
        ({"classes": [{"title": "a", "shape": "bitmap", "color": "red"}]}, "$.classes[0].color", "#RRGGBB"),
        ({"classes": [{"title": "a", "shape": "bitmap", "color": "#FF00"}]}, "$.classes[0].color", "#RRGGBB"),
        ({"classes": [{"shape": "bitmap"}]}, "$.classes[0].title", "title"),
        ({"classes": {}}, "$.classes", "must be a list"),
        ({"tags": ["a", {"name": "a"}]}, "$.tags[1]", "duplicate tag name 'a'"),
        ({"tags": [{"name": "a", "value_type": "date_time"}]}, "$.tags[0].value_type", "unknown value_type"),
        ({"tags": [{"name": "a", "value_type": "oneof_string"}]}, "$.tags[0].values", "oneof_string needs"),
        (
            {"tags": [{"name": "a", "value_type": "none", "values": ["x"]}]},
            "$.tags[0].values",
            "only allowed",
        ),
        ({"tags": [{"name": "a", "color": "#GGGGGG"}]}, "$.tags[0].color", "#RRGGBB"),
        ({"tags": ["a"], "tags_images": ["b"]}, "$.tags_images", "use one form"),
        (
            {"tags_images": [{"name": "a", "value_type": "any_string"}], "tags_objects": [{"name": "a"}]},
            "$.tags_objects[0]",
            "duplicate tag name",
        ),
    ],
)
def test_meta_errors(meta, path, message):
    with pytest.raises(FormatError) as info:
        ProjectMeta.from_json(meta, file="meta.json")
    assert info.value.json_path == path
    assert message in info.value.message
    assert str(info.value).startswith(f"meta.json: {path}: ")


def test_colour_helpers():
    assert color_to_rgb("#0a0B0c") == (10, 11, 12)
    assert rgb_to_color((10, 11, 12)) == "#0A0B0C"
    with pytest.raises(ValueError):
        rgb_to_color((256, 0, 0))
    import random

    assert random_color(random.Random(1)) == random_color(random.Random(1))
    import numpy as np

    assert random_color(np.random.default_rng(2)) == random_color(np.random.default_rng(2))
