"""`unetkit dtl check|run|draw` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unetkit.cli.main import main
from unetkit.dtl.draw import graph_elements, layered_layout, to_dot
from unetkit.dtl.graph import load_graph

from .helpers import make_ann, make_image, write_graph, write_project

VESSELS = Path(__file__).resolve().parents[2] / "examples" / "dtl" / "vessels_train.json"
GRAPH = [
    {"action": "data", "src": ["proj/*"], "dst": "$s", "settings": {"classes_mapping": "default"}},
    {
        "action": "if",
        "src": ["$s"],
        "dst": ["$t", "null"],
        "settings": {"condition": {"min_objects_count": 1}},
    },
    {"action": "background", "src": ["$t"], "dst": "$b", "settings": {"class": "bg"}},
    {"action": "save", "src": ["$b"], "dst": "result", "settings": {"visualize": True}},
]


@pytest.fixture()
def proj(tmp_path):
    return write_project(
        tmp_path / "proj", {"ds": {f"a{i}.png": (make_image(seed=i), make_ann()) for i in range(2)}}
    )


def test_check_prints_the_output_meta(proj, tmp_path, capsys):
    graph = write_graph(tmp_path / "g.json", GRAPH)
    assert main(["dtl", "check", str(graph), "--input", str(proj)]) == 0
    out = capsys.readouterr().out
    assert "graph OK: 4 layers, data from proj, saved by layer 3 (save) as 'result'" in out
    assert "bg" in out and "rectangle" in out and "output classes (6)" in out
    assert main(["dtl", "check", str(graph)]) == 0
    assert "pass --input" in capsys.readouterr().out


def test_run_writes_a_project(proj, tmp_path, capsys):
    graph = write_graph(tmp_path / "g.json", GRAPH)
    out = tmp_path / "out"
    args = [
        "dtl",
        "run",
        str(graph),
        "--input",
        str(proj),
        "--out",
        str(out),
        "--seed",
        "1",
        "--workers",
        "2",
    ]
    assert main(args) == 0
    assert "DTL finished: 2 items written" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "ds" / "visualize").iterdir()) == ["a0.png", "a1.png"]
    assert json.loads((out / "meta.json").read_text())["classes"][-1]["title"] == "bg"
    assert main(args) == 2  # the output folder is not empty any more
    assert "not empty" in capsys.readouterr().err


def test_bad_graph_exits_2_before_writing(proj, tmp_path, capsys):
    bad = [*GRAPH[:3], {**GRAPH[3], "settings": {"visualize": "yes please"}}]
    graph = write_graph(tmp_path / "g.json", bad)
    out = tmp_path / "out"
    assert main(["dtl", "run", str(graph), "--input", str(proj), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {graph}: layer 3 (save): settings.visualize:")
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".dot", ".svg", ".png"])
def test_draw_tutorial_graph(tmp_path, suffix, capsys):
    target = tmp_path / f"graph{suffix}"
    assert main(["dtl", "draw", str(VESSELS), "-o", str(target)]) == 0
    data = target.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        text = data.decode()
        for word in ("vessels/*", "flip", "crop", "$totrain", "$data_with_bg", "vessels_train"):
            assert word in text
    assert main(["dtl", "draw", str(VESSELS), "-o", str(tmp_path / "x.txt")]) == 2


def test_draw_structure_follows_the_graph():
    graph = load_graph(VESSELS)
    nodes, edges = graph_elements(graph)
    labels = {(e.src, e.dst, e.label) for e in edges}
    assert ("src0", "layer0", "") in labels  # vessels/* -> data
    assert ("layer0", "layer2", "$sample") in labels and ("layer1", "layer2", "$fv") in labels
    assert ("layer3", "layer6", "$data") in labels and ("layer5", "layer6", "$data3") in labels
    assert ("layer10", "output", "") in labels
    pos = layered_layout(nodes, edges)
    assert all(pos[e.src][1] > pos[e.dst][1] for e in edges)  # every edge points down
    dot = to_dot(graph)
    assert dot.startswith("digraph dtl {") and 'layer6 -> layer7 [label="$totrain"];' in dot
