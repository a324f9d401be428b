"""Executor: streaming, naming (docs/original-behaviour.md, "DTL output naming"), error isolation, refusals,
seeds and workers."""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from unetkit.dtl.executor import ElementRunner, load_inputs, run_graph
from unetkit.dtl.graph import build_graph
from unetkit.errors import FormatError, GraphError
from unetkit.project import Project, Tag

from .helpers import make_ann, make_image, read_tree, write_project

DATA = {"action": "data", "src": ["proj/*"], "dst": "$s", "settings": {"classes_mapping": "default"}}


def save(*src, action="supervisely", settings=None):
    return {"action": action, "src": list(src), "dst": "result", "settings": settings or {}}


@pytest.fixture()
def proj(tmp_path):
    items = {
        "ds": {f"img_{i:02d}.png": (make_image(seed=i), make_ann()) for i in range(3)},
        "other": {"img_00.png": (make_image(seed=9), make_ann())},
    }
    return write_project(tmp_path / "in" / "proj", items)


def run(graph, inputs, out, **kw):
    projects = load_inputs(inputs)
    g = build_graph(graph, {p.name: p.meta for p in projects})
    return run_graph(g, projects, out, progress=False, **kw)


def test_copy_graph_keeps_names_and_links_unmodified_images(proj, tmp_path):
    report = run([DATA, save("$s")], [proj], tmp_path / "out")
    assert (report.inputs, report.written, report.skipped) == (4, 4, [])
    assert dict(report.per_dataset) == {"ds": 3, "other": 1}
    out = Project.read(tmp_path / "out")
    assert sorted(i.name for i in out.items()) == ["img_00.png", "img_00.png", "img_01.png", "img_02.png"]
    assert (tmp_path / "out/ds/img/img_01.png").read_bytes() == (proj / "ds/img/img_01.png").read_bytes()
    ann = json.loads((tmp_path / "out/ds/ann/img_01.png.json").read_text())
    assert ann["objects"][0]["tags"][0]["name"] == "obj_tag"  # object tags are kept
    assert json.loads((tmp_path / "out/meta.json").read_text()) == out.meta.to_json()


def test_duplicate_stems_get_a_seeded_random_suffix_per_dataset(proj, tmp_path):
    graph = [
        DATA,
        {"action": "multiply", "src": ["$s"], "dst": "$m", "settings": {"multiply": 3}},
        save("$m"),
    ]
    run(graph, [proj], tmp_path / "a", seed=5)
    run(graph, [proj], tmp_path / "b", seed=5)
    names = sorted(p.name for p in (tmp_path / "a/ds/img").iterdir())
    assert len(names) == 9 and names.count("img_00.png") == 1
    assert all(re.fullmatch(r"img_0\d(_[A-Za-z0-9]{10})?\.png", n) for n in names)
    assert sorted(p.name for p in (tmp_path / "a/other/img").iterdir())[0] == "img_00.png"
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")


def test_same_dataset_in_two_projects_is_prefixed(proj, tmp_path):
    second = write_project(
        tmp_path / "in2" / "second", {"ds": {"img_00.png": (make_image(seed=3), make_ann())}}
    )
    graph = [DATA, {**DATA, "src": ["second/ds"], "dst": "$t"}, save("$s", "$t")]
    report = run(graph, [proj, second], tmp_path / "out", seed=1)
    assert dict(report.per_dataset) == {"proj__ds": 3, "second__ds": 1, "other": 1}
    graph = [
        DATA,
        {**DATA, "src": ["second/ds"], "dst": "$t"},
        {"action": "dataset", "src": ["$s", "$t"], "dst": "$d", "settings": {"rule": "save_original"}},
        save("$d"),
    ]
    report = run(graph, [proj, second], tmp_path / "out2", seed=1)
    assert dict(report.per_dataset) == {"ds": 4, "other": 1}
    names = sorted(p.name for p in (tmp_path / "out2/ds/img").iterdir())
    assert names[:3] == ["img_00.png", "img_00_" + names[1][7:17] + ".png", "img_01.png"]


def test_first_matching_data_layer_receives_the_images(proj, tmp_path):
    graph = [
        {**DATA, "src": ["proj/ds"]},
        {**DATA, "dst": "$all"},
        {"action": "tag", "src": ["$all"], "dst": "$t", "settings": {"tag": "second", "action": "add"}},
        save("$s", "$t"),
    ]
    run(graph, [proj], tmp_path / "out")
    out = tmp_path / "out"
    tagged = {
        str(p.relative_to(out)): [t["name"] for t in json.loads(p.read_text())["tags"]]
        for p in out.rglob("ann/*.json")
    }
    # ds images enter through layer 0 only (no "second" tag); "other" only matches layer 1
    assert tagged == {
        "ds/ann/img_00.png.json": ["img_tag"],
        "ds/ann/img_01.png.json": ["img_tag"],
        "ds/ann/img_02.png.json": ["img_tag"],
        "other/ann/img_00.png.json": ["img_tag", "second"],
    }


def test_errors_are_isolated_per_image(proj, tmp_path):
    (proj / "ds/ann/img_01.png.json").write_text('{"size": 3}')
    bad = make_ann()
    bad.tags = [Tag("img_tag", "conflict")]
    write_project(
        tmp_path / "in3" / "p3", {"ds": {"a.png": (make_image(), bad), "b.png": (make_image(), make_ann())}}
    )
    report = run([DATA, save("$s")], [proj], tmp_path / "out")
    assert (report.inputs, report.written) == (4, 3)
    [skipped] = report.skipped
    assert (skipped.project, skipped.dataset, skipped.item) == ("proj", "ds", "img_01.png")
    assert "FormatError" in skipped.reason
    # the failing layer comes after the save layer got the element: that output stays written
    graph = [
        {**DATA, "src": ["p3/*"]},
        save("$s", "$t"),
        {
            "action": "tag",
            "src": ["$s"],
            "dst": "$t",
            "settings": {"tag": {"name": "img_tag", "value": "x"}, "action": "add"},
        },
    ]
    report = run(graph, [tmp_path / "in3/p3"], tmp_path / "out3")
    assert report.written == 3 and [s.item for s in report.skipped] == ["a.png"]
    assert "conflicting value" in report.skipped[0].reason


def test_refuses_input_and_non_empty_output(proj, tmp_path):
    before = read_tree(proj)
    for out in (proj, proj / "ds", proj / "new"):
        with pytest.raises(FormatError, match="source project"):
            run([DATA, save("$s")], [proj], out)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FormatError, match="not empty"):
        run([DATA, save("$s")], [proj], tmp_path / "full")
    assert read_tree(proj) == before
    with pytest.raises(GraphError, match="Data Layer can not init corresponding project meta"):
        run([{**DATA, "src": ["missing/*"]}, save("$s")], [proj], tmp_path / "o")
    assert not (tmp_path / "o").exists()


RANDOM_GRAPH = [
    DATA,
    {"action": "multiply", "src": ["$s"], "dst": "$m", "settings": {"multiply": 4}},
    {
        "action": "crop",
        "src": ["$m"],
        "dst": "$c",
        "settings": {
            "random_part": {
                "width": {"min_percent": 40, "max_percent": 90},
                "height": {"min_percent": 40, "max_percent": 90},
                "keep_aspect_ratio": False,
            }
        },
    },
    {
        "action": "if",
        "src": ["$c", "$s"],
        "dst": ["$t", "$v"],
        "settings": {"condition": {"probability": 0.5}},
    },
    {"action": "tag", "src": ["$t"], "dst": "$tt", "settings": {"tag": "train", "action": "add"}},
    {"action": "tag", "src": ["$v"], "dst": "$vv", "settings": {"tag": "val", "action": "add"}},
    save("$tt", "$vv", action="save", settings={"visualize": True}),
]


def test_seeded_runs_are_identical_across_worker_counts(proj, tmp_path):
    one = run(RANDOM_GRAPH, [proj], tmp_path / "w1", seed=11, workers=1)
    two = run(RANDOM_GRAPH, [proj], tmp_path / "w2", seed=11, workers=2)
    assert (one.written, two.written, two.workers) == (20, 20, 2)
    tree = read_tree(tmp_path / "w1")
    assert tree == read_tree(tmp_path / "w2")
    assert sum(k.startswith("ds/visualize/") for k in tree) == 15
    assert not any(".unetkit" in k for k in tree)
    run(RANDOM_GRAPH, [proj], tmp_path / "s12", seed=12)
    assert read_tree(tmp_path / "s12") != tree


def test_unseeded_runs_differ(proj, tmp_path):
    run(RANDOM_GRAPH, [proj], tmp_path / "a")
    run(RANDOM_GRAPH, [proj], tmp_path / "b")
    assert read_tree(tmp_path / "a") != read_tree(tmp_path / "b")


def test_order_dependent_graph_runs_with_one_worker(proj, tmp_path):
    cond = {"name_in_range": ["img_00", "img_99"], "frame_step": 2}
    graph = [
        DATA,
        {"action": "if", "src": ["$s"], "dst": ["$a", "null"], "settings": {"condition": cond}},
        save("$a"),
    ]
    report = run(graph, [proj], tmp_path / "out", workers=2)
    assert report.workers == 1 and report.written == 2  # ds/img_00, ds/img_02 (other/img_00 is the 4th: odd)


def test_execution_is_streaming(proj):
    graph = [
        DATA,
        {"action": "multiply", "src": ["$s"], "dst": "$m", "settings": {"multiply": 10**7}},
        save("$m"),
    ]
    projects = load_inputs([proj])
    g = build_graph(graph, {"proj": projects[0].meta})
    item = next(projects[0].items())
    start = time.perf_counter()
    outputs = list(itertools.islice(ElementRunner(g, seed=0).run(projects[0], item, g.data_layers[0]), 3))
    assert len(outputs) == 3 and time.perf_counter() - start < 5


def test_write_errors_are_isolated_per_image(proj, tmp_path):
    """A layer that breaks the image/annotation size contract: the image is skipped, the run goes on."""
    from unetkit.dtl.base import Layer
    from unetkit.dtl.registry import LAYERS, register_layer

    @register_layer
    class BadSize(Layer):
        action = "test_bad_size"

        def process(self, el, ctx):
            grow = el.item_name == "img_01.png"
            yield 0, el.replace(ann=el.ann.clone(height=el.ann.height + grow))

    try:
        graph = [DATA, {"action": "test_bad_size", "src": ["$s"], "dst": "$b", "settings": {}}, save("$b")]
        report = run(graph, [proj], tmp_path / "out")
    finally:
        LAYERS.pop("test_bad_size")
    assert report.written == 3 and [s.item for s in report.skipped] == ["img_01.png"]
    assert "does not match image" in report.skipped[0].reason


def test_real_sample_projects_pass_through_valid(sly_samples_dir, tmp_path):
    """Every geometry and tag type of the real samples survives data -> background -> save."""
    from unetkit.project import validate_project

    for name in ("legacy_sdk_tutorial_project", "roads_annotated_subset"):
        graph = [
            {**DATA, "src": [f"{name}/*"]},
            {"action": "background", "src": ["$s"], "dst": "$b", "settings": {"class": "bg_added"}},
            save("$b"),
        ]
        source = Project.read(sly_samples_dir / name)
        report = run(graph, [sly_samples_dir / name], tmp_path / name, seed=0, workers=2)
        assert (report.written, report.skipped) == (len(source), [])
        assert validate_project(tmp_path / name) == []
        out = Project.read(tmp_path / name)
        for item in source.items():
            src_ann = item.read_annotation(source.meta)
            out_ann = next(i for i in out.items() if i.name == item.name).read_annotation(out.meta)
            assert out_ann.labels[0].class_title == "bg_added"
            assert [lb.tags for lb in out_ann.labels[1:]] == [lb.tags for lb in src_ann.labels]
            assert out_ann.tags == src_ann.tags


def test_progress_bar_runs(proj, tmp_path, capsys):
    projects = load_inputs([proj])
    g = build_graph([DATA, save("$s")], {"proj": projects[0].meta})
    assert run_graph(g, projects, tmp_path / "out", progress=True).written == 4
