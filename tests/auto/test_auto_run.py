"""`unetkit auto` end to end on a generated project: the budget is kept, the run works wherever a checkpoint
does (infer with and without --config, export with ensemble parity, serve, evaluate), a plan reproduces a run."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from unetkit.auto.plan import MARGIN, Plan
from unetkit.cli.main import main
from unetkit.models.checkpoint import load_checkpoint, read_card
from unetkit.project import Annotation, Bitmap, Label, ObjClass, Project, ProjectMeta, ProjectWriter

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")
BUDGET_S = 120.0  # small work: 8 images, 2 minutes, kept within ±10 %


def make_project(path, n=10, size=64, seed=0):
    """Dark noisy images with a bright ring (thin structure) and a disk: one class, no tags."""
    rng = np.random.default_rng(seed)
    writer = ProjectWriter(path, ProjectMeta(classes=[ObjClass("fg", "bitmap", "#FF0000")]))
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx = rng.integers(20, 44, size=2)
        r = (yy - cy) ** 2 + (xx - cx) ** 2
        fg = ((r >= 100) & (r <= 144)) | (r <= 16)
        img = (rng.random((size, size, 3)) * 70).astype(np.uint8)
        img[fg] += np.array([150, 110, 60], np.uint8)
        writer.add_item(
            "ds0", f"im_{i:02d}.png", img, Annotation(size, size, [Label("fg", Bitmap((0, 0), fg))])
        )
    writer.write_meta()
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("auto")
    project = make_project(root / "project", n=8)
    started = time.perf_counter()
    code = main(["auto", str(project), "--out", str(root / "run"), "--budget", f"{BUDGET_S:.0f}s", "--folds", "2",
                 "--no-progress"])  # fmt: skip
    return project, root / "run", time.perf_counter() - started, code


def test_the_budget_is_planned_and_not_overrun(run):
    """The plan spends the budget (its shares sum to it, less the margin) and a guard stops training past it. How
    close a run ends to its budget depends on the machine's load, so the ±10 % figure is measured by the
    benchmarks (benchmarks/suite.py and rules.py record every run's minutes), not asserted here."""
    _, folder, elapsed, code = run
    assert code == 0
    plan = Plan.read(folder / "plan.json")
    planned = sum(plan.time_s.values())
    assert (1 - MARGIN) * BUDGET_S - 1 <= planned <= BUDGET_S and plan.time_s["train"] >= 0.5 * BUDGET_S
    assert elapsed <= 1.5 * BUDGET_S, elapsed  # the guard (105 % of training) and the select / report shares


def test_outputs_plan_report_and_ensemble_card(run):
    _, folder, _, _ = run
    plan = Plan.read(folder / "plan.json")
    assert plan.folds == 2 and plan.fingerprint["images"] == 8
    assert not list(folder.glob(".out-of-fold-*"))  # the out-of-fold memory maps are removed
    card = read_card(folder)  # RUN resolves to RUN/model
    assert card.path == folder / "model" and card.model == "ensemble" and card.model_options["count"] == 2
    assert card.inference.mode.name == "sliding_window" and card.inference.mode.window.width == plan.patch
    assert card.provenance.plan == plan.model_dump(
        mode="json"
    )  # the plan, once, with the steps each fold ran
    recorded = card.provenance.model_extra["auto"]
    assert len(recorded["members"]) == 2 and "tta" not in recorded and "tta" not in card.provenance.plan
    assert [s["option"] for s in recorded["selection"]][:2] == ["tta", "threshold"]
    html = (folder / "report.html").read_text()
    for section in (
        "Fingerprint",
        "Plan",
        "Training curves per fold",
        "Choices on out-of-fold",
        "ROC",
        "overlays",
    ):
        assert section in html


def test_infer_without_and_with_config_export_and_evaluate(run, tmp_path):
    project, folder, _, _ = run
    assert main(["infer", "--model", str(folder), "--project", str(project), "--out", str(tmp_path / "a"),
                 "--no-progress"]) == 0  # fmt: skip
    cfg = tmp_path / "full.json"
    cfg.write_text(
        json.dumps({"model": {}, "mode": {"name": "full_image", "model_classes": {"add_suffix": "_full"}}})
    )
    assert main(["infer", "--model", str(folder), "--project", str(project), "--out", str(tmp_path / "b"),
                 "--config", str(cfg), "--no-progress"]) == 0  # fmt: skip
    assert Project.read(tmp_path / "a").meta.get_class("fg_unet") is not None  # the plan's settings
    assert Project.read(tmp_path / "b").meta.get_class("fg_full") is not None  # the given config wins
    assert (
        main(
            [
                "evaluate",
                "--gt",
                str(project),
                "--pred",
                str(tmp_path / "a"),
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    dice = json.loads((tmp_path / "m.json").read_text())["pooled"]["per_class"]["fg"]["dice"]
    assert dice > 0.5
    assert (
        main(["export", "onnx", "--model", str(folder), "-o", str(tmp_path / "m.onnx")]) == 0
    )  # parity checked


def test_ensemble_is_the_mean_of_its_members(run):
    _, folder, _, _ = run
    ensemble = load_checkpoint(folder).model
    members = [
        load_checkpoint(folder / m).model for m in read_card(folder).provenance.model_extra["auto"]["members"]
    ]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(x), 1) for m in members]).mean(0)
        torch.testing.assert_close(torch.softmax(ensemble(x), 1), mean, atol=1e-5, rtol=1e-4)


def test_serving_the_run(run):
    from unetkit.serving.app import create_app

    _, folder, _, _ = run
    with TestClient(create_app(folder)) as client:
        info = client.get("/v1/model").json()
        assert info["architecture"] == "ensemble"


def test_a_plan_reproduces_its_run(run, tmp_path):
    project, folder, _, _ = run
    plan = json.loads((folder / "plan.json").read_text())
    plan.update(iterations=6, validations=1, folds=2, fold_iterations=None)
    plan["selection"]["try_tta"] = False
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    states = []
    for name in ("r1", "r2"):
        assert main(["auto", str(project), "--out", str(tmp_path / name), "--plan", str(tmp_path / "plan.json"),
                     "--no-progress"]) == 0  # fmt: skip
        states.append(torch.load(tmp_path / name / "model" / "model.pt", weights_only=True))
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_each_fold_refits_and_the_plan_keeps_the_schedule_it_ran(run):
    from unetkit.auto.planner import training_config
    from unetkit.training.lr_policy import schedule_factor

    _, folder, _, _ = run
    plan = Plan.read(folder / "plan.json")
    assert len(plan.fold_iterations) == 2 and len(plan.fold_stretches) == 2
    for i, steps in enumerate(plan.fold_iterations):
        records = [json.loads(line) for line in open(folder / "folds" / str(i) / "metrics.jsonl")]
        refits = [r for r in records if r["type"] == "refit"]
        assert 1 <= len(refits) <= 2 and refits[-1]["total_iterations"] == steps
        stretch = plan.fold_stretches[i]
        if len(refits) == 2:  # the second refit, halfway, re-anchored the decay; the plan says where
            assert list(stretch) == [refits[1]["iteration"], refits[1]["stretch_from"]]
        else:
            assert stretch is None
        ran = json.loads((folder / "folds" / str(i) / "train_config.json").read_text())
        # a re-run of this plan trains `steps` steps from the start: its schedule is the one this fold ran
        per_epoch = steps // refits[-1]["epochs"]
        n_train = per_epoch * plan.batch_size
        again = training_config(plan, n_train, steps, stretch)["unetkit"]["scheduler"]
        assert again["hold_iters"] == ran["unetkit"]["scheduler"]["hold_iters"] == refits[0]["iteration"]
        for r in (r for r in records if r["type"] == "train"):
            factor = schedule_factor("cosine", r["iteration"] - 1, steps, warmup_iters=again["warmup_iters"],
                                     hold_iters=again["hold_iters"], min_lr_ratio=again["min_lr_ratio"],
                                     stretch_at=again.get("stretch_at", 0),
                                     stretch_from=again.get("stretch_from", 0.0))  # fmt: skip
            assert r["lr"] == pytest.approx(plan.lr * factor)


def test_a_start_side_override_reaches_the_patch_network_and_batch_rules(tmp_path):
    """``start_patch`` (a rule experiment) is applied before the rules that follow from it, so the probe measures
    the network and batch that will train."""
    from unetkit.auto.planner import plan_project

    project = make_project(tmp_path / "project", n=4)
    plain = plan_project(project, budget="60s", scratch=tmp_path)
    small = plan_project(project, budget="60s", scratch=tmp_path, overrides={"start_patch": 32})
    assert (plain.patch, plain.start_patch) == (64, None)  # 128 capped by the 64-pixel images
    assert (small.patch, small.batch_size, small.start_patch) == (32, 16, 32)
    assert small.network.model_options["depth"] == 2 < plain.network.model_options["depth"]
    assert small.probe["train_step_s"] > 0
