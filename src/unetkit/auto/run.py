"""``unetkit auto``: fingerprint → plan → train the folds → choose on out-of-fold predictions → model + report.

The run folder works wherever a checkpoint does: ``RUN/checkpoints/best.json`` points at ``RUN/model`` (one fold's
best checkpoint, or the ensemble of the folds), whose model card carries the plan and the inference settings.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetkit import atomic
from unetkit.auto.folds import make_folds
from unetkit.auto.plan import Plan
from unetkit.auto.planner import (
    inference_config,
    plan_project,
    repeated,
    training_config,
    validation_reserve,
)
from unetkit.auto.select import Choices, OutOfFold, choose, choose_multilabel
from unetkit.errors import ConfigError
from unetkit.inference_config import parse_config
from unetkit.models.card import ClassMap, Provenance
from unetkit.project import Project, rasterize, read_pixels
from unetkit.project.rasterize import rasterize_labelsets
from unetkit.training.setup import Refit

log = logging.getLogger("unetkit.auto")
GUARD = 1.05  # training stops at 105 % of its planned time even if the probe was optimistic


@dataclass
class AutoResult:
    run_dir: Path
    plan: Plan
    choices: Choices
    model_dir: Path
    seconds: float


def on_disk(array: np.ndarray, path: Path, dtype) -> np.ndarray:
    """``array`` written to ``path`` (.npy) and mapped back read-only, so that out-of-fold results take disk,
    not memory, however many images there are."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=array.shape)
    out[...] = array
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def out_of_fold(
    ckpt: Path, project: Project, names: list[str], plan: Plan, tta: bool, store: Path
) -> list[OutOfFold]:
    """Probabilities of a fold's validation images (sliding window, Gaussian blending; also with flip-TTA), kept
    in ``store`` as float16 memory maps."""
    from unetkit.inference.modes import build_runner
    from unetkit.inference.predictor import Predictor

    items = {f"{it.dataset}/{it.name}": it for it in project.items()}
    predictor = Predictor.from_checkpoint(ckpt, amp=plan.amp)
    plain = build_runner(inference_config(plan, Choices(), predictor.card.classes), project.meta, predictor)
    flipped = build_runner(inference_config(plan, Choices(tta=True), predictor.card.classes), None, predictor)
    multilabel = predictor.card.classes.multilabel
    mapping = {**predictor.card.classes.class_title_to_idx, plan.neutral: predictor.num_classes}
    out = []
    for name in names:
        item = items[name]
        ann = item.read_annotation(project.meta)
        image = read_pixels(item.image_path)
        draw = rasterize_labelsets if multilabel else rasterize
        gt = draw(ann, mapping, skip_unknown=True)
        stem = store / str(len(out))
        _, probs, _ = plain.stitch(image, keep_probabilities=True)
        probs = on_disk(probs, stem.with_suffix(".probs.npy"), np.float16)
        probs_tta = None
        if tta:
            _, probs_tta, _ = flipped.stitch(image, keep_probabilities=True)
            probs_tta = on_disk(probs_tta, stem.with_suffix(".tta.npy"), np.float16)
        out.append(
            OutOfFold(name, on_disk(gt, stem.with_suffix(".gt.npy"), gt.dtype), probs, probs_tta, multilabel)
        )
    return out


def _final_model(run: Path, fold_ckpts: list[Path], plan: Plan, choices: Choices, classes: ClassMap) -> Path:
    """``RUN/model``: the single fold model, or the ensemble of the folds; its card carries the plan and the
    chosen inference settings."""
    from unetkit.models.checkpoint import load_checkpoint, save_checkpoint
    from unetkit.models.ensemble import Ensemble

    loaded = [load_checkpoint(c) for c in fold_ckpts]
    card = loaded[0].card
    if len(loaded) == 1:
        model, model_name, options = loaded[0].model, card.model, dict(card.model_options)
    else:
        model = Ensemble([ld.model for ld in loaded], card.classes.multilabel)
        model_name = "ensemble"
        options = {"member": card.model, "member_options": dict(card.model_options), "count": len(loaded),
                   "multilabel": card.classes.multilabel}  # fmt: skip
    provenance = Provenance.model_validate(
        {
            **card.provenance.model_dump(exclude_none=True),
            "plan": plan.model_dump(mode="json"),  # the plan, once (with the steps each fold ran)
            "auto": {  # what selection measured; what it chose is the card's inference settings
                "dice": choices.dice,
                "selection": choices.steps,
                "members": [str(c.relative_to(run)) for c in fold_ckpts],
            },
        }
    )
    settings = parse_config(inference_config(plan, choices, classes), file="the run's inference settings")
    final = card.model_copy(
        update={
            "model": model_name,
            "model_options": options,
            "provenance": provenance,
            "inference": settings,
        }
    )
    save_checkpoint(run / "model", model, final)
    atomic.write_json(run / "checkpoints" / "best.json", {"path": "model"})
    return run / "model"


def auto(
    project_dir,
    out_dir,
    *,
    budget: str | float = "60m",
    plan: Plan | str | Path | None = None,
    folds: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> AutoResult:
    """Plan (unless given a plan), train, choose and report within the budget (see docs/auto.md)."""
    from unetkit.auto.report import write_report
    from unetkit.training import train

    started = time.time()
    run = Path(out_dir)
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise ConfigError("the output folder exists and is not empty", file=run)
    if isinstance(plan, (str, Path)):
        plan = Plan.read(plan)
    given = plan is not None
    if plan is None:
        plan = plan_project(project_dir, budget=budget, device=device, folds=folds, seed=seed)
    atomic.make_folder(run)
    plan.write(run / "plan.json")
    project = Project.read(project_dir)
    names = [f"{it.dataset}/{it.name}" for it in project.items()]
    splits = make_folds(names, plan.folds, plan.seed, plan.holdout_fraction)
    t = plan.time_s
    planned = (0.0 if given else t.get("planning", 0.0)) + t.get("train", 0.7 * plan.budget_s)
    train_end = started + planned  # the planned end of training; a guard stops it at GUARD × planned
    fold_ckpts, histories, steps = [], [], list(plan.fold_iterations or [])
    for i, split in enumerate(splits):
        started_fold = time.time()
        left = len(splits) - i
        fold_end = started_fold + (train_end - started_fold) / left
        deadline = started_fold + (started + planned * GUARD - started_fold) / left
        fold = {"train": repeated(split["train"], plan.batch_size), "val": split["val"]}
        fixed = given or len(steps) > i  # a given plan runs its steps; a fresh run refits each fold once
        config = training_config(plan, len(fold["train"]), steps[i] if len(steps) > i else None)
        refit = None
        if not fixed:
            at = max(1, config["unetkit"]["scheduler"]["hold_iters"])
            refit = Refit(at, fold_end, validation_reserve(plan, len(split["val"])), plan.validations)
        result = train(project_dir, config, run / "folds" / str(i), progress=progress, split=fold,
                       deadline=deadline, refit=refit)  # fmt: skip
        if len(steps) <= i:
            refits = [r["total_iterations"] for r in result.records if r.get("type") == "refit"]
            per_epoch = math.ceil(len(fold["train"]) / plan.batch_size)
            steps.append(refits[-1] if refits else config["epochs"] * per_epoch)
        fold_ckpts.append(result.best_checkpoint)
        histories.append(result.records)
    plan = plan.model_copy(update={"fold_iterations": steps})
    plan.write(run / "plan.json")  # with the steps each fold ran: the plan reproduces this run
    classes = read_classes(fold_ckpts[0])
    oof: list[OutOfFold] = []
    scratch = Path(tempfile.mkdtemp(prefix=".out-of-fold-", dir=run))  # removed once the report is written
    for i, (ckpt, split) in enumerate(zip(fold_ckpts, splits)):
        atomic.make_folder(scratch / str(i))
        oof += out_of_fold(ckpt, project, split["val"], plan, plan.selection.try_tta, scratch / str(i))
    s = plan.selection
    if classes.multilabel:
        choices = choose_multilabel(oof, s.thresholds, s.try_tta)
    else:
        choices = choose(oof, classes.neutral_index, s.thresholds, s.min_sizes, s.try_tta, s.try_keep_largest)
    model_dir = _final_model(run, fold_ckpts, plan, choices, classes)
    write_report(run, plan, choices, oof, histories, splits, project, classes)
    del oof
    shutil.rmtree(scratch, ignore_errors=True)
    return AutoResult(run, plan, choices, model_dir, time.time() - started)


def read_classes(ckpt: Path) -> ClassMap:
    from unetkit.models.checkpoint import read_card

    return read_card(ckpt).classes


__all__ = ["AutoResult", "auto"]
