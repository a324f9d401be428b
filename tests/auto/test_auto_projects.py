"""`auto` end to end on the tutorial's vessels project, a multi-class Supervisely sample, a project with
overlapping classes (multi-label) and one of a thousand images, each within a short budget."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from unetkit.auto.run import auto
from unetkit.models.checkpoint import read_card
from unetkit.project import Annotation, Bitmap, Label, ObjClass, ProjectMeta, ProjectWriter

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")
SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sly_samples"
BUDGET_S = {
    "vessels": 35.0,
    "overlapping": 35.0,
    "lemons": 90.0,
    "thousand": 60.0,
}  # lemons: 800×1067 images, 256² patches


def vessels(path: Path) -> Path:
    from unetkit.demo.pipeline import write_sample_project

    write_sample_project(path, "vessel", [1, 2, 3, 4, 5, 6], size=96)
    return path


def overlapping(path: Path) -> Path:
    rng = np.random.default_rng(0)
    meta = ProjectMeta(classes=[ObjClass("a", "bitmap", "#FF0000"), ObjClass("b", "bitmap", "#00FF00")])
    writer = ProjectWriter(path, meta)
    yy, xx = np.mgrid[:48, :48]
    for i in range(6):
        cy, cx = rng.integers(16, 32, size=2)
        a = (yy - cy) ** 2 + (xx - cx + 5) ** 2 <= 64
        b = (yy - cy) ** 2 + (xx - cx - 5) ** 2 <= 64
        img = (rng.random((48, 48, 3)) * 40).astype(np.uint8)
        img[a, 0] += 180
        img[b, 1] += 180
        writer.add_item(
            "ds",
            f"{i}.png",
            img,
            Annotation(48, 48, [Label("a", Bitmap((0, 0), a)), Label("b", Bitmap((0, 0), b))]),
        )
    writer.write_meta()
    return path


def thousand(path: Path) -> Path:
    """1,000 small images in 4 datasets: many folds' worth of out-of-fold files and selection passes."""
    rng = np.random.default_rng(1)
    writer = ProjectWriter(path, ProjectMeta(classes=[ObjClass("spot", "bitmap", "#FF0000")]))
    yy, xx = np.mgrid[:24, :24]
    for i in range(1000):
        cy, cx = rng.integers(6, 18, size=2)
        spot = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
        img = (rng.random((24, 24, 3)) * 60).astype(np.uint8)
        img[spot] += 150
        writer.add_item(
            f"ds{i % 4}", f"{i:04d}.png", img, Annotation(24, 24, [Label("spot", Bitmap((0, 0), spot))])
        )
    writer.write_meta()
    return path


def lemons(path: Path) -> Path:
    source = SAMPLES / "lemons_annotated"
    if not source.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{source} is missing")
        pytest.skip(f"{source} is missing")
    return source


@pytest.mark.parametrize(
    "make", [vessels, lemons, overlapping, thousand], ids=["vessels", "lemons", "overlapping", "thousand"]
)
def test_auto_runs_end_to_end_within_its_budget(make, tmp_path):
    project = make(tmp_path / "project")
    budget = BUDGET_S[make.__name__]
    result = auto(project, tmp_path / "run", budget=budget, progress=False)
    assert (
        result.seconds <= 1.5 * budget
    )  # the strict ±20 % check is test_auto_run.py (a loaded CI is noisier)
    card = read_card(tmp_path / "run")
    assert (tmp_path / "run" / "report.html").is_file() and card.inference.mode.name == "sliding_window"
    assert card.provenance.plan["patch"] == result.plan.patch  # the plan, once
    if make is overlapping:
        assert result.plan.multilabel and card.classes.multilabel
        assert all(s["option"] == "tta" or s["option"].startswith("threshold[") for s in result.choices.steps)
    if make is thousand:
        assert result.plan.fingerprint["images"] == 1000 and np.isfinite(result.choices.dice)
    if make is lemons:
        assert set(card.classes.class_title_to_idx) == {"bg", "kiwi", "lemon"}
