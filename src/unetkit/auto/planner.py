"""Plan assembly: a project → its :class:`~unetkit.auto.plan.Plan` (fingerprint, rules, speed probes), and the
training and inference configs a plan implies (docs/auto.md, "Rules").
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import torch

from unetkit.auto.fingerprint import fingerprint
from unetkit.auto.folds import make_folds
from unetkit.auto.plan import (
    Plan,
    class_weights_for,
    make_plan,
    memory_batch,
    shape_for,
)
from unetkit.auto.probe import probe, probe_training
from unetkit.auto.select import Choices, cleanup_rules
from unetkit.errors import ConfigError
from unetkit.models.card import ClassMap
from unetkit.project import Project

MIN_BUDGET_S = 30.0
REFIT_AT = 0.1  # of the planned steps: there a fold sizes the rest of its run from its own measured speed


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
    project_dir,
    *,
    budget: str | float = "60m",
    device: str = "auto",
    folds: int | None = None,
    seed: int = 0,
    scratch=None,
    overrides: dict | None = None,
) -> Plan:
    """Fingerprint a project and derive its plan (docs/auto.md, "Rules"). The training probe runs in a hidden
    folder inside ``scratch`` (default: the system's temporary folder), removed when it ends. ``overrides``
    (:meth:`Plan.overridden`) apply to the probe's run and to the plan."""
    budget_s = parse_budget(budget)
    dev = resolve_device(device)
    started = time.time()
    fp = fingerprint(project_dir)
    if fp.get("images", 0) < 2:
        raise ConfigError("auto needs a project with at least 2 annotated images", file=project_dir)
    kind = "cpu" if dev.type == "cpu" else "gpu"
    patch, network, batch = shape_for(fp, kind, (overrides or {}).get("start_patch"))
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
    stub = Plan(budget_s=budget_s, iterations=1, **common).overridden(overrides)
    # about 2 % of the budget on the real pipeline (6 to 400 steps) measures the step time within a few percent
    steps = int(min(400, max(6, 0.02 * budget_s / (1.3 * speed.train_step_s))))
    holdout = {"train": repeated(holdout["train"], batch), "val": holdout["val"]}
    config = training_config(stub, len(holdout["train"]))
    with warnings.catch_warnings():  # the plan's device: no CUDA warning on a CPU plan
        warnings.filterwarnings("ignore", "CUDA is not available", UserWarning)
        training = probe_training(project_dir, config, holdout, steps, scratch=scratch)
    speed = dataclasses.replace(speed, planning_s=time.time() - started)
    plan = make_plan(fp, budget_s=budget_s, speed=speed, training=training, probe_val_images=len(holdout["val"]),
                     folds=folds, **common)  # fmt: skip
    return plan.overridden(overrides)


def validation_reserve(plan: Plan, val_images: int) -> float:
    """Seconds a fold's validations (with their checkpoints) take, from the probe's timing (a fresh plan's)."""
    return plan.validations * val_images * plan.probe["validation_image_s"]


def repeated(names: list[str], batch_size: int) -> list[str]:
    """Few images: each listed several times, so that an epoch holds ≥ 4 batches of distinct random patches."""
    times = max(1, math.ceil(4 * batch_size / len(names)))
    return [n for n in names for _ in range(times)]


def training_config(
    plan: Plan, n_train: int, iterations: int | None = None, stretch: tuple[int, float] | None = None
) -> dict:
    """The training config of one fold (``iterations``: this fold's steps, default the plan's; ``stretch``: where
    its second refit re-anchored the decay, so that a re-run follows the schedule the fold ran)."""
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
        "data_workers": {"train": plan.data_workers, "val": 0},
        "special_classes": {"background": plan.background, "neutral": plan.neutral},
        "unetkit": {
            "model": plan.network.model,
            "model_options": plan.network.model_options,
            "loss": {"name": plan.loss, **loss_weights(plan)},
            "optimizer": plan.optimizer.model_dump(),
            "amp": plan.amp,
            "seed": plan.seed,
            "augment": plan.augment.model_dump(),
            "scheduler": {
                "name": plan.schedule,
                "warmup_iters": warmup,
                "hold_iters": max(warmup, int(REFIT_AT * planned)),  # the refit point (see auto())
                "min_lr_ratio": 0.01,
                **({"stretch_at": int(stretch[0]), "stretch_from": float(stretch[1])} if stretch else {}),
            },
            "patch_sampling": {"mode": "random_crop", "foreground_prob": plan.foreground_prob},
            "log_every": max(1, per_epoch),
            **({"multilabel": True} if plan.multilabel else {}),
        },
    }


def loss_weights(plan: Plan) -> dict:
    """The training config's ``class_weights`` of the plan's class weighting (none for multi-label runs)."""
    weights = None if plan.multilabel else class_weights_for(plan.fingerprint, plan.class_weighting)
    return {"class_weights": weights} if weights else {}


def inference_config(plan: Plan, choices: Choices, classes: ClassMap) -> dict:
    """The inference settings the run's model card carries (what every consumer applies by default)."""
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
        "tta": bool(choices.tta),
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


__all__ = [
    "inference_config",
    "parse_budget",
    "plan_project",
    "repeated",
    "training_config",
    "validation_reserve",
]
