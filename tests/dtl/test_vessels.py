"""The tutorial's vessels graph (seed 002) runs UNCHANGED on a 6-image CHASE DB1 project."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import pytest

from unetkit.dtl.executor import load_inputs, run_graph
from unetkit.dtl.graph import load_graph
from unetkit.project import Project
from unetkit.project.imports import import_masks

GRAPH = Path(__file__).resolve().parents[2] / "examples" / "dtl" / "vessels_train.json"
STEMS = ["Image_01L", "Image_01R", "Image_02L", "Image_02R", "Image_03L", "Image_03R"]
SIZE = 240  # images written at reduced resolution to keep the test fast; the graph is not changed


@pytest.fixture(scope="module")
def vessels(chasedb1_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vessels")
    raw = root / "raw"
    raw.mkdir()
    for stem in STEMS:
        img = cv2.imread(str(chasedb1_dir / f"{stem}.jpg"))
        cv2.imwrite(str(raw / f"{stem}.jpg"), cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
        mask = cv2.imread(str(chasedb1_dir / f"{stem}_1stHO.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(
            str(raw / f"{stem}_1stHO.png"), cv2.resize(mask, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
        )
    import_masks(raw, raw, root / "vessels")
    return root / "vessels"


def test_graph_file_is_the_tutorial_verbatim():
    seed = next((Path(__file__).resolve().parents[3] / "shared" / "seeds").glob("002_*.txt"), None)
    if seed is None:
        if os.environ.get("CI") == "true":
            pytest.fail("seed documents not found in ../shared/seeds")
        pytest.skip("seed documents not available")
    text = seed.read_text(encoding="utf-8")
    block = text.split("Full DTL config:")[1].split("```json\n")[1].split("```")[0]
    assert json.loads(GRAPH.read_text(encoding="utf-8")) == json.loads(block)


def test_vessels_graph_writes_264_items(vessels, tmp_path):
    projects = load_inputs([vessels])
    graph = load_graph(GRAPH, {p.name: p.meta for p in projects})
    report = run_graph(graph, projects, tmp_path / "vessels_train", seed=0, progress=False)
    assert (report.inputs, report.written, report.skipped) == (6, 264, [])
    out = Project.read(tmp_path / "vessels_train")
    assert [(c.title, c.shape) for c in out.meta.classes] == [("vessel", "bitmap"), ("bg", "rectangle")]
    assert sorted(t.name for t in out.meta.tag_metas) == ["train", "val"]
    items = list(out.items())
    assert len(items) == 264
    splits = {"train": 0, "val": 0}
    full_size = 0
    for item in items:
        ann = item.read_annotation(out.meta)
        assert len(ann.tags) == 1
        splits[ann.tags[0].name] += 1
        bg = ann.labels[0]
        assert bg.class_title == "bg" and bg.geometry.to_json()["points"]["exterior"] == [
            [0, 0],
            [ann.width - 1, ann.height - 1],
        ]
        assert all(lb.class_title == "vessel" for lb in ann.labels[1:]) and len(ann.labels) == 2
        if (ann.height, ann.width) == (SIZE, SIZE):
            full_size += 1
        else:  # a random crop of 70..90 % per side
            assert int(SIZE * 0.7) <= ann.height <= int(SIZE * 0.9)
            assert int(SIZE * 0.7) <= ann.width <= int(SIZE * 0.9)
    assert full_size == 24  # 6 originals + 6 vertical flips + 12 horizontal flips reach `if` uncropped
    assert 240 <= splits["train"] <= 262 and splits["val"] == 264 - splits["train"]
