"""The built-in demo: synthetic fundus generator, packaged tutorial graph, end-to-end pipeline and report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unetkit.demo.pipeline import (
    DEMO_TRAIN_CONFIG,
    DOCS_INFERENCE_CONFIG,
    vessels_graph,
    write_sample_project,
)
from unetkit.demo.synthetic import draw_fundus
from unetkit.project import Project, validate_project

REPO = Path(__file__).resolve().parents[2]


def test_fundus_is_deterministic_and_vessel_like():
    a_img, a_mask = draw_fundus(3, 128)
    b_img, b_mask = draw_fundus(3, 128)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert a_img.shape == (128, 128, 3) and a_img.dtype == np.uint8
    assert 0.02 < a_mask.mean() < 0.2  # thin structures, not blobs or noise
    # vessels are darker than the surrounding fundus
    disc = np.hypot(*np.mgrid[-64:64, -64:64]) < 55
    assert a_img[a_mask].mean() < a_img[disc & ~a_mask].mean() - 20
    c_img, _ = draw_fundus(4, 128)
    assert not np.array_equal(a_img, c_img)


def test_packaged_graph_is_the_tutorial_example():
    example = json.loads((REPO / "examples" / "dtl" / "vessels_train.json").read_text())
    assert vessels_graph() == example
    assert example[0]["src"] == ["vessels/*"] and example[-1]["dst"] == "vessels_train"


def test_demo_configs_keep_the_documented_fields():
    tutorial = json.loads((REPO / "examples" / "train.json").read_text())
    assert set(DEMO_TRAIN_CONFIG) - {"unetkit"} == set(tutorial)
    assert DOCS_INFERENCE_CONFIG == json.loads((REPO / "examples" / "inference.json").read_text())


def test_sample_project_validates(tmp_path):
    write_sample_project(tmp_path / "p", "s", [1, 2], size=96)
    assert validate_project(tmp_path / "p") == []
    project = Project.read(tmp_path / "p")
    assert len(project) == 2 and [c.title for c in project.meta.classes] == ["vessel"]


@pytest.mark.slow
def test_demo_end_to_end_writes_a_report(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "unetkit", "demo", "--out", str(out), "--epochs", "1", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Report:" in proc.stdout
    html = (out / "report.html").read_text()
    for needle in (
        "Training charts",
        "Held-out metrics",
        "ground truth",
        "prediction",
        "data:image/png;base64",
    ):
        assert needle in html
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 4
    assert 0.0 <= metrics["pooled"]["per_class"]["vessel"]["dice"] <= 1.0
    assert len(Project.read(out / "vessels_train")) == 264
    assert validate_project(out / "inference") == []
    # a second run into the same folder is refused with a clear error (exit 2), nothing overwritten
    again = subprocess.run(
        [sys.executable, "-m", "unetkit", "demo", "--out", str(out), "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2 and "not empty" in again.stderr
