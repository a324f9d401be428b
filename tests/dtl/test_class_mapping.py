"""Class-mapping semantics (docs/original-behaviour.md, "DTL class mapping") and property tests of the
static meta computation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unetkit.dtl.class_mapping import (
    apply_mapping,
    apply_tag_changes,
    auto_color,
    map_labels,
    merge_metas,
    resolve_mapping,
)
from unetkit.errors import GraphError
from unetkit.project import ObjClass, ProjectMeta

from .helpers import make_ann, make_meta

PROPS = settings(max_examples=50, deadline=None)
TITLES = ["bitmap", "poly", "rect", "line", "point"]


def titles(meta):
    return [c.title for c in meta.classes]


def test_default_ignore_rename_and_other():
    meta = make_meta()
    out = apply_mapping(meta, {"poly": "shape", "line": "__ignore__", "__other__": "__default__"})
    assert titles(out) == ["bitmap", "rect", "point", "shape"]  # renamed classes move to the end
    assert out.get_class("shape").color == "#00FF00" and out.get_class("shape").shape == "polygon"
    assert resolve_mapping(meta, {"poly": "shape", "line": "__ignore__", "__other__": "__default__"}) == {
        "bitmap": "bitmap",
        "poly": "shape",
        "rect": "rect",
        "line": None,
        "point": "point",
    }


def test_merge_by_renaming_keeps_the_first_class():
    meta = ProjectMeta(
        classes=[
            ObjClass(title="a", shape="bitmap", color="#111111", geometry_config={}, extra={}),
            ObjClass(title="b", shape="bitmap", color="#222222", geometry_config={}, extra={}),
        ]
    )
    out = apply_mapping(meta, {"a": "ab", "b": "ab"})
    assert [(c.title, c.color) for c in out.classes] == [("ab", "#111111")]
    out = apply_mapping(meta, {"a": "__default__", "b": "a"})
    assert [(c.title, c.color) for c in out.classes] == [("a", "#111111")]


def test_internal_keys():
    meta = make_meta()
    out = apply_mapping(
        meta,
        {
            "__other__": "__default__",
            "rect": {"title": "rect_poly", "shape": "polygon"},
            "__new__": [{"title": "hint", "shape": "point"}],
            "__clone__": {"poly": "poly2"},
            "__update__": {"line": {"color": "#123456"}},
        },
    )
    assert titles(out) == ["bitmap", "poly", "line", "point", "rect_poly", "poly2", "hint"]
    assert out.get_class("rect_poly").shape == "polygon" and out.get_class("rect_poly").color == auto_color(
        "rect_poly"
    )
    assert out.get_class("poly2").color == "#00FF00" and out.get_class("hint").shape == "point"
    assert out.get_class("line").color == "#123456"
    assert meta.get_class("line").color == "#FFFF00"  # the input meta is untouched


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"nope": "x", "__other__": "__default__"}, "Can not rename class nope. Not found"),
        ({"nope": "__ignore__", "__other__": "__default__"}, "Can not delete class nope. Not found"),
        ({"poly": "__default__"}, "Some classes in mapping are missed"),
        ({"poly": "rect", "__other__": "__default__"}, "Same class with different shape (rectangle) exists."),
        ({"__other__": "__default__", "__clone__": {"nope": "x"}}, "Can not clone class nope. Not found"),
        ({"__other__": "__default__", "__update__": {"nope": {}}}, "Can not update class nope. Not found"),
    ],
)
def test_mapping_errors(mapping, message):
    with pytest.raises(GraphError) as info:
        apply_mapping(make_meta(), mapping)
    assert message in str(info.value)


def test_tags_and_merging_metas():
    meta = make_meta()
    out = apply_tag_changes(meta, ["train", {"name": "split", "value": "a"}, "img_tag"], ["obj_tag"])
    assert [(t.name, t.value_type) for t in out.tag_metas] == [
        ("img_tag", "any_string"),
        ("train", "none"),
        ("split", "any_string"),
    ]
    other = ProjectMeta(
        classes=[ObjClass(title="new", shape="point", color="#010101", geometry_config={}, extra={})]
    )
    merged = merge_metas([meta, other, meta])
    assert titles(merged) == [*TITLES, "new"] and len(merged.tag_metas) == 2


targets = st.sampled_from(["__default__", "__ignore__", "a", "b", "poly", "point"])


@PROPS
@given(st.fixed_dictionaries({t: targets for t in TITLES}))
def test_mapped_objects_always_match_the_output_meta(mapping):
    """Either the mapping is rejected (shape clash) or every mapped object has a class of its shape."""
    meta = make_meta()
    try:
        out = apply_mapping(meta, mapping)
    except GraphError as exc:
        assert "Same class with different shape" in str(exc)
        return
    resolved = resolve_mapping(meta, mapping)
    ann = map_labels(make_ann(), resolved)
    kept = [t for t in TITLES if mapping[t] != "__ignore__"]
    assert len(ann.labels) == len(kept)
    for label in ann.labels:
        assert out.get_class(label.class_title).shape == label.geometry.name
    assert len({c.title for c in out.classes}) == len(out.classes)
    assert {c.title for c in out.classes} == {resolved[t] for t in kept}


@PROPS
@given(st.permutations(TITLES), st.text("abcdefgh", min_size=1, max_size=6))
def test_rename_there_and_back_is_identity(order, suffix):
    meta = make_meta()
    there = {t: t + "_" + suffix for t in order}
    back = {v: k for k, v in there.items()}
    round_trip = apply_mapping(apply_mapping(meta, there), back)
    assert sorted(titles(round_trip)) == sorted(TITLES)
    assert {c.title: (c.shape, c.color) for c in round_trip.classes} == {
        c.title: (c.shape, c.color) for c in meta.classes
    }
