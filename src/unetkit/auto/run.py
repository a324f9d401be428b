"""``unetkit auto``: fingerprint → plan → train the folds → choose on out-of-fold predictions → model + report.

The run folder works wherever a checkpoint does: ``RUN/checkpoints/best.json`` points at ``RUN/model`` (one fold's
best checkpoint, or the ensemble of the folds), whose model card carries the plan and the inference settings.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unetkit import atomic
from unetkit.auto.fingerprint import fingerprint
from unetkit.auto.folds import make_folds
from unetkit.auto.plan import Plan, batch_for, make_plan, memory_batch, network_for, patch_side
from unetkit.auto.probe import probe, probe_training
from unetkit.auto.select import Choices, OutOfFold, choose, choose_multilabel, cleanup_rules
from unetkit.errors import ConfigError
from unetkit.models import model_stride
from unetkit.models.card import ClassMap
from unetkit.project import Project, rasterize, read_pixels
from unetkit.project.rasterize import rasterize_labelsets
from unetkit.training.setup import Refit

log = logging.getLogger("unetkit.auto")
MIN_BUDGET_S = 30.0
GUARD = 1.05  # training stops at 105 % of its planned time even if the probe was optimistic
REFIT_AT = 0.1  # of the planned steps: there a fold sizes the rest of its run from its own measured speed


@dataclass
class AutoResult:
    run_dir: Path
    plan: Plan
    choices: Choices
    model_dir: Path
    seconds: float


def parse_budget(text: str | float) -> float:
    """``"60m"``, ``"1.5h"``, ``"90s"`` or a number of seconds → seconds."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip().lower()
        units = {"s": 1, "m": 60, "h": 3600}
        try:
            value = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
        except ValueError:
            raise ConfigError(f"budget {text!r}: expected e.g. 60m, 1.5h or 900s") from None
    if not math.isfinite(value) or value < MIN_BUDGET_S:
        raise ConfigError(f"budget {text!r}: at least {MIN_BUDGET_S:.0f} s")
    return value


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available")
    return torch.device(device)


def plan_project(
    project_dir, *, budget: str | float = "60m", device: str = "auto", folds: int | None = None, seed: int = 0
) -> Plan:
    """Fingerprint a project and derive its plan (docs/auto.md, "Rules")."""
    budget_s = parse_budget(budget)
    dev = resolve_device(device)
    started = time.time()
    fp = fingerprint(project_dir)
    if fp.get("images", 0) < 2:
        raise ConfigError("auto needs a project with at least 2 annotated images", file=project_dir)
    kind = "cpu" if dev.type == "cpu" else "gpu"
    network = network_for(128 if kind == "cpu" else 256, kind)
    stride = model_stride(network.model, **network.model_options)
    patch = patch_side(fp, kind, stride)
    network = network_for(patch, kind)
    patch = patch_side(fp, kind, model_stride(network.model, **network.model_options))
    batch = batch_for(patch, kind)
    classes = len(fp["classes"]) + 1
    speed = probe(network.model, network.model_options, fp["channels"], classes, patch, batch, dev, steps=2)
    fits = memory_batch(batch, speed.step_bytes, speed.available_bytes)
    if fits < batch:  # measured: the planned batch would not fit in memory
        batch = fits
        speed = probe(
            network.model, network.model_options, fp["channels"], classes, patch, batch, dev, steps=2
        )
    common = {"device": kind, "seed": seed, "patch": patch, "batch_size": batch, "network": network}
    project = Project.read(project_dir)
    holdout = make_folds([f"{it.dataset}/{it.name}" for it in project.items()], 1, seed)[0]
    stub = Plan(budget_s=budget_s, iterations=1, **common)
    # about 2 % of the budget on the real pipeline (6 to 400 steps) measures the step time within a few percent
    steps = int(min(400, max(6, 0.02 * budget_s / (1.3 * speed.train_step_s))))
    holdout = {"train": repeated(holdout["train"], batch), "val": holdout["val"]}
    training = probe_training(project_dir, training_config(stub, len(holdout["train"])), holdout, steps)
    speed = dataclasses.replace(speed, planning_s=time.time() - started)
    return make_plan(fp, budget_s=budget_s, speed=speed, training=training, probe_val_images=len(holdout["val"]),
                     folds=folds, **common)  # fmt: skip


def validation_reserve(plan: Plan, val_images: int) -> float:
    """Seconds a fold's validations (with their checkpoints) take, from the probe's timing (a fresh plan's)."""
    return plan.validations * val_images * plan.probe["validation_image_s"]


def repeated(names: list[str], batch_size: int) -> list[str]:
    """Few images: each listed several times, so that an epoch holds ≥ 4 batches of distinct random patches."""
    times = max(1, math.ceil(4 * batch_size / len(names)))
    return [n for n in names for _ in range(times)]


def training_config(plan: Plan, n_train: int, iterations: int | None = None) -> dict:
    """The training config of one fold (``iterations``: this fold's steps, default the plan's)."""
    per_epoch = max(1, math.ceil(n_train / plan.batch_size))
    epochs = max(1, math.ceil((iterations or plan.iterations) / per_epoch))
    planned = max(1, math.ceil(plan.iterations / per_epoch)) * per_epoch  # the schedule's start is the plan's
    warmup = int(plan.warmup_fraction * planned)
    return {
        "lr": plan.lr,
        "epochs": epochs,
        "val_every": max(epochs / plan.validations, 1 / per_epoch),
        "batch_size": {"train": plan.batch_size, "val": plan.batch_size},
        "input_size": {"width": plan.patch, "height": plan.patch},
        "gpu_devices": [0],
        "data_workers": {"train": 0, "val": 0},
        "special_classes": {"background": plan.background, "neutral": plan.neutral},
        "unetkit": {
            "model": plan.network.model,
            "model_options": plan.network.model_options,
            "loss": {"name": plan.loss},
            "amp": plan.amp,
            "seed": plan.seed,
            "augment": plan.augment.model_dump(),
            "scheduler": {
                "name": "cosine",
                "warmup_iters": warmup,
                "hold_iters": max(warmup, int(REFIT_AT * planned)),  # the refit point (see auto())
                "min_lr_ratio": 0.01,
            },
            "patch_sampling": {"mode": "random_crop", "foreground_prob": plan.foreground_prob},
            "log_every": max(1, per_epoch),
            **({"multilabel": True} if plan.multilabel else {}),
        },
    }


def inference_config(plan: Plan, choices: Choices, classes: ClassMap) -> dict:
    """The inference config the run's model card carries (used when ``infer`` gets no ``--config``)."""
    overlap = int(plan.patch * plan.window_overlap)
    titles = {i: t for t, i in classes.class_title_to_idx.items()}
    mode = {
        "name": "sliding_window",
        "window": {"width": plan.patch, "height": plan.patch},
        "min_overlap": {"x": overlap, "y": overlap},
        "blend": "gaussian",
        "batch_size": 4,
        "model_classes": {"add_suffix": "_unet"},
        "save_probabilities": False,
    }
    if isinstance(choices.threshold, dict):
        if choices.threshold:
            mode["threshold"] = {titles[c]: t for c, t in choices.threshold.items()}
    elif choices.threshold is not None:
        mode["threshold"] = choices.threshold
    rules = cleanup_rules(choices.min_sizes, choices.keep_largest)
    if rules:
        mode["postprocess"] = {titles[c]: r.model_dump(exclude_defaults=True) for c, r in rules.items()}
    return {"model": {}, "mode": mode}


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
    runner = build_runner(inference_config(plan, Choices(), predictor.card.classes), project.meta, predictor)
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
        _, probs, _ = runner.stitch(image, keep_probabilities=True)
        probs = on_disk(probs, stem.with_suffix(".probs.npy"), np.float16)
        probs_tta = None
        if tta:
            predictor.tta = True
            _, probs_tta, _ = runner.stitch(image, keep_probabilities=True)
            probs_tta = on_disk(probs_tta, stem.with_suffix(".tta.npy"), np.float16)
            predictor.tta = False
        out.append(
            OutOfFold(name, on_disk(gt, stem.with_suffix(".gt.npy"), gt.dtype), probs, probs_tta, multilabel)
        )
    return out


def _final_model(run: Path, fold_ckpts: list[Path], plan: Plan, choices: Choices, classes: ClassMap) -> Path:
    """``RUN/model``: the single fold model, or the ensemble of the folds; its card carries plan and choices."""
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
    provenance = card.provenance.model_copy(
        update={
            "plan": {
                "plan": plan.model_dump(mode="json"),
                "choices": {
                    "threshold": choices.threshold,
                    "min_sizes": choices.min_sizes,
                    "keep_largest": choices.keep_largest,
                    "tta": choices.tta,
                    "dice": choices.dice,
                    "steps": choices.steps,
                },  # fmt: skip
                "inference": inference_config(plan, choices, classes),
                "tta": choices.tta,
                "members": [str(c.relative_to(run)) for c in fold_ckpts],
            }
        }
    )
    final = card.model_copy(update={"model": model_name, "model_options": options, "provenance": provenance})
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


__all__ = ["AutoResult", "auto", "parse_budget", "plan_project", "training_config"]
