"""Graph parsing and validation (docs/original-behaviour.md, "DTL graph validation"): every error kind
names the layer index, action and key."""

from __future__ import annotations

import copy

import pytest

from unetkit.dtl.graph import build_graph, load_graph
from unetkit.errors import GraphError
from unetkit.project import ObjClass, ProjectMeta

from .helpers import make_meta, write_graph

DATA = {"action": "data", "src": ["proj/*"], "dst": "$s", "settings": {"classes_mapping": "default"}}
SAVE = {"action": "supervisely", "src": ["$s"], "dst": "result", "settings": {}}


def graph(*middle, data=DATA, save=SAVE):
    return [copy.deepcopy(data), *copy.deepcopy(list(middle)), copy.deepcopy(save)]


def error_of(obj, metas=None) -> GraphError:
    with pytest.raises(GraphError) as info:
        build_graph(obj, metas)
    return info.value


def test_valid_graph_computes_meta():
    g = build_graph(
        graph(
            {"action": "tag", "src": ["$s"], "dst": "$t", "settings": {"tag": "train", "action": "add"}},
            {"action": "background", "src": ["$t"], "dst": "$b", "settings": {"class": "bg"}},
            save={**SAVE, "src": ["$b"]},
        ),
        {"proj": make_meta()},
    )
    assert [c.title for c in g.output_meta.classes] == ["bitmap", "poly", "rect", "line", "point", "bg"]
    assert g.output_meta.get_class("bg").shape == "rectangle"
    assert g.output_meta.get_tag_meta("train").value_type == "none"
    assert g.projects == ["proj"] and g.save_layer.index == 3


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda g: g[1].pop("action"), 'layer 1: action: No "action" field in layer.'),
        (lambda g: g[1].update(action="nope"), 'layer 1 (nope): action: Unrecognized action "nope".'),
        (lambda g: g[1].update(extra=1), "layer 1 (dummy): extra: unknown key"),
        (lambda g: g[1].pop("settings"), "layer 1 (dummy): settings: required key is missing"),
        (lambda g: g[1].update(src="$s"), "layer 1 (dummy): src: must be a non-empty array of strings"),
        (lambda g: g[1].update(dst=["$d"]), "layer 1 (dummy): dst: must be a string"),
        (lambda g: g[1].update(src=["null"]), 'layer 1 (dummy): src[0]: "null" cannot be in "src".'),
        (lambda g: g[1].update(src=["s"]), 'layer 1 (dummy): src[0]: Connection name should start with "$"'),
        (
            lambda g: g[1].update(dst="d"),
            'layer 1 (dummy): dst: Connection name should be "null" or start with "$"',
        ),
        (lambda g: g[2].update(dst="a/b"), "layer 2 (supervisely): dst: output name must not contain"),
        (lambda g: g[2].update(dst=""), "layer 2 (supervisely): dst: output name must not be empty"),
        (lambda g: g[1].update(settings=[]), "layer 1 (dummy): settings: must be a JSON object"),
    ],
)
def test_layer_schema_errors(mutate, expected):
    g = graph({"action": "dummy", "src": ["$s"], "dst": "$d", "settings": {}}, save={**SAVE, "src": ["$d"]})
    mutate(g)
    assert expected in str(error_of(g))


def test_settings_errors_name_the_key():
    err = error_of(graph({"action": "multiply", "src": ["$s"], "dst": "$m", "settings": {"multiply": 0}}))
    assert str(err).startswith("layer 1 (multiply): settings.multiply:")
    assert err.layer_index == 1 and err.action == "multiply" and err.json_path == "$[1].settings.multiply"
    err = error_of(
        graph({"action": "multiply", "src": ["$s"], "dst": "$m", "settings": {"multiply": 2, "x": 1}})
    )
    assert str(err).startswith("layer 1 (multiply): settings.x:")
    err = error_of(
        graph({"action": "tag", "src": ["$s"], "dst": "$t", "settings": {"tag": "a", "action": "nope"}})
    )
    assert str(err).startswith("layer 1 (tag): settings.action:")
    err = error_of(
        graph(
            {
                "action": "tag",
                "src": ["$s"],
                "dst": "$t",
                "settings": {"tag": {"name": "a", "value": "v"}, "action": "delete"},
            }
        )
    )
    assert str(err) == "layer 1 (tag): settings.tag.value: deleting a tag does not take a value"


def test_if_dst_needs_two_names():
    bad = {"action": "if", "src": ["$s"], "dst": "$a", "settings": {"condition": {"min_objects_count": 1}}}
    assert "layer 1 (if): dst: must be an array of exactly 2 strings" in str(error_of(graph(bad)))


def test_save_layer_count():
    assert "only one save layer (layer 1 (supervisely), layer 2 (save))" in str(
        error_of([DATA, SAVE, {**SAVE, "action": "save"}])
    )
    assert "only one save layer (none found)" in str(
        error_of([DATA, {"action": "dummy", "src": ["$s"], "dst": "null", "settings": {}}])
    )


def test_missing_data_layer_and_too_few_layers():
    assert str(error_of([{"action": "dummy", "src": ["$x"], "dst": "$s", "settings": {}}, SAVE])) == (
        "Graph error: missing data layer."
    )
    assert "at least two layers" in str(error_of([DATA]))
    assert "must be a JSON array" in str(error_of({"action": "data"}))


def test_loop_is_detected():
    g = graph(
        {"action": "dummy", "src": ["$s", "$c"], "dst": "$b", "settings": {}},
        {"action": "dummy", "src": ["$b"], "dst": "$c", "settings": {}},
        save={**SAVE, "src": ["$c"]},
    )
    err = error_of(g)
    assert "Loop in layers structure." in str(err) and err.layer_index in (1, 2)


def test_undefined_placeholder_and_components():
    err = error_of(graph(save={**SAVE, "src": ["$nowhere"]}))
    assert str(err).startswith(
        'layer 1 (supervisely): src[0]: placeholder "$nowhere" is produced by no layer'
    )
    assert "several connected components" in str(err)
    second = {**DATA, "src": ["other/*"], "dst": "$o"}
    sink = {"action": "dummy", "src": ["$o"], "dst": "null", "settings": {}}
    err = error_of([DATA, second, sink, SAVE])
    assert str(err).startswith("layer 1 (data): dst: Graph has several connected components.")


def test_data_layer_checks():
    err = error_of(graph(data={**DATA, "src": ["proj/a", "other/b"]}))
    assert "layer 0 (data): src: data layer can work only with one project" in str(err)
    err = error_of(graph(data={**DATA, "src": ["proj/"]}))
    assert 'layer 0 (data): src[0]: Wrong "data" layer source path' in str(err)
    err = error_of(graph(), {"elsewhere": make_meta()})
    assert "layer 0 (data): src: Data Layer can not init corresponding project meta" in str(err)
    g = build_graph(graph(data={**DATA, "src": ["proj/a", "proj/b"]}))
    assert g.data_layers[0].datasets == {"a", "b"}  # fix: every listed dataset is honoured


def test_class_mapping_errors():
    metas = {"proj": make_meta()}
    rename = {"action": "rename", "src": ["$s"], "dst": "$r", "settings": {"classes_mapping": {"nope": "x"}}}
    assert "layer 1 (rename): settings.classes_mapping: Can not rename class nope. Not found" in str(
        error_of(graph(rename, save={**SAVE, "src": ["$r"]}), metas)
    )
    drop = {"action": "drop_obj_by_class", "src": ["$s"], "dst": "$r", "settings": {"classes": ["nope"]}}
    assert "layer 1 (drop_obj_by_class): settings.classes: Can not delete class nope. Not found" in str(
        error_of(graph(drop, save={**SAVE, "src": ["$r"]}), metas)
    )
    data = {**DATA, "settings": {"classes_mapping": {"poly": "__default__"}}}
    assert "layer 0 (data): settings.classes_mapping: Some classes in mapping are missed" in str(
        error_of(graph(data=data), metas)
    )
    clash = {
        "action": "rename",
        "src": ["$s"],
        "dst": "$r",
        "settings": {"classes_mapping": {"poly": "rect"}},
    }
    assert (
        "Trying to add new class (rect) with shape (polygon). Same class with different shape (rectangle)"
        in str(error_of(graph(clash, save={**SAVE, "src": ["$r"]}), metas))
    )


def test_merging_two_projects_with_conflicting_shapes():
    other = ProjectMeta(
        classes=[ObjClass(title="poly", shape="bitmap", color="#010203", geometry_config={}, extra={})]
    )
    g = [DATA, {**DATA, "src": ["other/*"], "dst": "$o"}, {**SAVE, "src": ["$s", "$o"]}]
    err = error_of(g, {"proj": make_meta(), "other": other})
    assert str(err).startswith("layer 2 (supervisely): Trying to add new class (poly) with shape (bitmap)")


def test_graph_file_errors_name_the_file(tmp_path):
    path = write_graph(tmp_path / "g.json", graph(save={**SAVE, "src": ["$x"]}))
    with pytest.raises(GraphError) as info:
        load_graph(path)
    assert str(info.value).startswith(f"{path}: layer 1 (supervisely): src[0]")
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(GraphError, match="invalid JSON: .* at line 1"):
        load_graph(bad)
