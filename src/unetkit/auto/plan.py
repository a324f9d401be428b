"""The plan: every decision of an ``auto`` run as plain JSON, derived from the fingerprint by fixed rules.

Each rule is explained in docs/auto.md ("Rules"). A user may edit a plan and run it again; the same plan and seed
reproduce the run. Nothing here looks at test data: the fingerprint is of the training project only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from unetkit import atomic
from unetkit.config_base import ConfigModel, merge, read_json, validate_config
from unetkit.models import model_stride
from unetkit.training.config import INPUT_SIZE_MULTIPLE, OptimizerOptions

FORMAT_VERSION = 1
CPU_PATCH, GPU_PATCH = 128, 256  # the patch side a device starts from (rule "Patch size")
MAX_SHARE = {"select": 0.25, "report": 0.05}  # of the budget (rule "Budget")
MARGIN = 0.02  # of the budget, kept free for the unforeseen (each fold refits its steps to its planned end)
MEMORY_SHARE = 0.5  # rule "Batch size": a training step may hold at most this share of the free memory
MIN_PASSES = 100  # rule "Folds": passes over its training pixels each fold model needs before folds pay


class Network(ConfigModel):
    model: str = "unet"
    model_options: dict[str, Any] = Field(default_factory=dict)


class Augment(ConfigModel):
    hflip: float = 0.5
    vflip: float = 0.5
    rot90: float = 0.5
    scale: list[float] | None = Field(default_factory=lambda: [0.85, 1.25])
    brightness: float = 0.15
    contrast: float = 0.15
    gamma: float = 0.15


class Selection(ConfigModel):
    """The options chosen on out-of-fold predictions (rule "Choices on validation")."""

    thresholds: list[float] = Field(default_factory=lambda: [round(0.05 * i, 2) for i in range(2, 19)])
    min_sizes: list[int] = Field(default_factory=lambda: [0, 16, 64, 256])
    try_keep_largest: bool = True
    try_tta: bool = True


class Plan(ConfigModel):
    config_name = "plan"

    format_version: Literal[1] = FORMAT_VERSION
    seed: int = Field(0, ge=0)
    budget_s: float = Field(gt=0)
    device: str = "cpu"
    fingerprint: dict[str, Any] = Field(default_factory=dict)
    background: str = "bg"
    neutral: str = "neutral"
    multilabel: bool = False
    network: Network = Field(default_factory=Network)
    patch: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    # rule "Patch size"'s start side (None: the device's, 128 on a CPU, 256 on a GPU); as an override (a rule
    # experiment) it is applied before the patch, network and batch rules, which follow from it
    start_patch: int | None = Field(None, ge=16)
    foreground_prob: float = Field(0.33, ge=0, le=1)
    loss: str = "ce_vnet_dice"
    # "inverse_sqrt_frequency": each foreground class's loss weight sqrt(background ÷ class pixels), 1 to 10
    class_weighting: Literal["none", "inverse_sqrt_frequency"] = "none"
    optimizer: OptimizerOptions = Field(default_factory=OptimizerOptions)
    lr: float = Field(0.002, gt=0)
    schedule: Literal["cosine", "poly"] = "cosine"  # the decay after the refit point
    warmup_fraction: float = Field(0.05, ge=0, le=0.5)
    augment: Augment = Field(default_factory=Augment)
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    data_workers: int = Field(0, ge=0)  # training loader processes beside the step (0: in the step's process)
    iterations: int = Field(gt=0)  # per fold, as planned
    fold_iterations: list[int] | None = (
        None  # the steps each fold ran (a finished run writes them; given, they are used)
    )
    # where each fold's second refit re-anchored its decay: (iteration, progress reached), or None (no second refit)
    fold_stretches: list[tuple[int, float] | None] | None = None
    validations: int = Field(5, ge=1)  # per fold
    folds: int = Field(1, ge=1)
    holdout_fraction: float = Field(0.2, gt=0, lt=1)
    selection: Selection = Field(default_factory=Selection)
    window_overlap: float = Field(0.5, ge=0, lt=1)
    time_s: dict[str, float] = Field(default_factory=dict)  # the budget's shares, as planned
    probe: dict[str, Any] = Field(default_factory=dict)  # measured speeds the iterations came from

    def write(self, path) -> Path:
        return atomic.write_json(path, self.model_dump(mode="json"), indent=2)

    @classmethod
    def read(cls, path) -> Plan:
        return validate_config(cls, read_json(path, what="plan"), file=path)

    def overridden(self, overrides: dict | None) -> Plan:
        """This plan with ``overrides`` (a nested dict of plan fields, e.g. ``{"optimizer": {"name": "sgd"}}``;
        ``None`` takes a key out: ``{"network": {"model_options": {"deep_supervision": None}}}``) merged in and
        validated: a rule experiment that still sizes itself to the budget."""
        if not overrides:
            return self
        merged = merge(self.model_dump(mode="json"), overrides, none_removes=True)
        return validate_config(type(self), merged, file="the plan overrides")


# ------------------------------------------------------------------------------------------------ the rules


def start_patch(device: str) -> int:
    """Rule "Patch size": the patch side a device starts from (128 on a CPU, 256 on a GPU)."""
    return CPU_PATCH if device == "cpu" else GPU_PATCH


def patch_side(fingerprint: dict, device: str, depth_stride: int, start: int | None = None) -> int:
    """Rule "Patch size": the start side (``start``, by default the device's), at least 16 object thicknesses (at
    most twice the start), at most the median image side, a multiple of the network's stride and of the training
    config's 16 (at least one such multiple)."""
    size = fingerprint["size"]
    median_side = min(size["height"]["median"], size["width"]["median"])
    side = start or start_patch(device)
    thick = [c["thickness_px"] for c in fingerprint["classes"].values() if c.get("thickness_px")]
    if thick:
        side = max(side, min(2 * side, 16 * max(thick)))
    side = min(side, median_side)
    unit = math.lcm(depth_stride, INPUT_SIZE_MULTIPLE)
    return max(unit, int(side // unit) * unit)


def network_for(patch: int, device: str) -> Network:
    """Rule "Network": a U-Net as deep as the patch allows (≥ 8 px at the bottom, at most 5 levels), 16 base
    channels on a CPU and 32 on a GPU, with deep supervision (nnU-Net's heads on the decoder levels)."""
    depth = max(2, min(5, int(math.log2(max(patch, 16) / 8))))
    width = 16 if device == "cpu" else 32
    return Network(
        model="unet", model_options={"base_channels": width, "depth": depth, "deep_supervision": True}
    )


def shape_for(fingerprint: dict, device: str, start: int | None = None) -> tuple[int, Network, int]:
    """Rules "Patch size", "Network" and "Batch size" together: the patch side, the network for it (whose stride
    the side is a multiple of) and the batch, from the start side (``start``, by default the device's)."""
    network = network_for(start or start_patch(device), device)
    patch = patch_side(fingerprint, device, model_stride(network.model, **network.model_options), start)
    network = network_for(patch, device)
    patch = patch_side(fingerprint, device, model_stride(network.model, **network.model_options), start)
    return patch, network, batch_for(patch, device)


MAX_CLASS_WEIGHT = 10.0


def class_weights_for(fingerprint: dict, weighting: str) -> dict[str, float] | None:
    """Rule candidate "Loss weighting": with ``inverse_sqrt_frequency``, each foreground class weighs
    sqrt(background pixel share ÷ its pixel share) in the loss (between 1 and ``MAX_CLASS_WEIGHT``; the background
    and classes never seen keep 1), so rare and thin classes count for more; ``none``: no weights."""
    if weighting == "none":
        return None
    shares = {t: c.get("pixel_fraction", 0.0) for t, c in fingerprint.get("classes", {}).items()}
    background = 1.0 - fingerprint.get("neutral_fraction", 0.0) - sum(shares.values())
    reference = background if background > 0 else max(shares.values(), default=0.0)
    return {
        t: round(min(MAX_CLASS_WEIGHT, max(1.0, math.sqrt(reference / f))), 3) if f > 0 else 1.0
        for t, f in shares.items()
    }


def holdout_images(images: int, fraction: float = 0.2) -> int:
    """How many images a held-out split validates on (as :func:`unetkit.auto.folds.make_folds`)."""
    return min(images - 1, max(1, round(fraction * images)))


def batch_for(patch: int, device: str) -> int:
    """Rule "Batch size": 8 patches of 128² on a CPU, 16 of 256² on a GPU, scaled with the patch area."""
    count, most = (8, 16) if device == "cpu" else (16, 32)
    start = start_patch(device)
    return max(2, min(most, round(count * (start / patch) ** 2)))


def passes(steps: int, batch: int, patch: int, train_pixels: float) -> float:
    """How many times ``steps`` batches of ``patch``² patches cover the training pixels."""
    return steps * batch * patch * patch / max(1.0, train_pixels)


def folds_for(images: int, fold_passes: float, requested: int | None) -> int:
    """Rule "Folds": 5-fold cross-validation when there are ≥ 10 images and each fold's model still sees its
    training pixels ≥ ``MIN_PASSES`` times (an ensemble of under-trained members loses to one model trained five
    times longer); otherwise one held-out split."""
    if requested is not None:
        return max(1, min(requested, images))
    if images >= 10 and fold_passes >= MIN_PASSES:
        return 5
    return 1


def memory_batch(batch: int, step_bytes: int, available_bytes: int, share: float = MEMORY_SHARE) -> int:
    """Rule "Batch size", memory part: the largest batch (at most ``batch``, at least 1) whose measured step memory,
    scaled with the batch, stays within ``share`` of the memory free on the device; unchanged when unmeasured."""
    if step_bytes <= 0 or available_bytes <= 0:
        return batch
    per_patch = step_bytes / batch
    return max(1, min(batch, int(share * available_bytes / per_patch)))


def make_plan(
    fingerprint: dict,
    *,
    budget_s: float,
    device: str,
    speed,
    training,
    probe_val_images: int = 1,
    seed: int = 0,
    folds: int | None = None,
    background: str = "bg",
    neutral: str = "neutral",
    patch: int,
    batch_size: int,
    network: Network,
    validations: int = 5,
) -> Plan:
    """The plan for a fingerprint, a budget and the measured speeds (:mod:`unetkit.auto.probe`): ``speed`` of
    the network alone (inference windows) and ``training`` of the real training pipeline."""
    classes = fingerprint["classes"]
    rare = min((c["pixel_fraction"] for c in classes.values()), default=1.0) < 0.01
    multilabel = bool(fingerprint.get("overlapping_classes"))
    images = fingerprint["images"]
    size = fingerprint["size"]
    # a window of out-of-fold inference costs what a tile of the probe's validation cost (measured, real data)
    tiles = math.ceil(size["height"]["median"] / patch) * math.ceil(size["width"]["median"] / patch)
    window_s = training.validation_s / max(1, probe_val_images * tiles)
    windows_per_image = math.ceil(size["height"]["median"] / (patch / 2)) * math.ceil(
        size["width"]["median"] / (patch / 2)
    )

    def oof_s(k: int) -> float:
        """One pass of out-of-fold inference: every image with k folds, the held-out fifth with one."""
        return (images if k > 1 else holdout_images(images)) * windows_per_image * window_s

    def budget_for(k: int) -> tuple[bool, float, float, float]:
        tta = oof_s(k) * 5 <= budget_s * MAX_SHARE["select"]  # TTA: the plain pass, then four flips
        select_s = min(1.0 + oof_s(k) * (5 if tta else 1), budget_s * MAX_SHARE["select"])
        report_s = min(1.0 + 0.2 * min(images, 6), budget_s * MAX_SHARE["report"])
        return tta, select_s, report_s, budget_s * (1 - MARGIN) - select_s - report_s - speed.planning_s

    per_val_image = training.validation_s / max(1, probe_val_images)

    def steps(k: int) -> int:
        """Training steps per fold when ``k`` folds share the training time (each: startup + validations + steps)."""
        val_images = images / k if k > 1 else holdout_images(images)
        fixed = training.startup_s + validations * per_val_image * val_images
        return int((budget_for(k)[3] / k - fixed) / training.step_s)

    pixels = images * size["height"]["median"] * size["width"]["median"]
    k = folds_for(images, passes(steps(5), batch_size, patch, pixels * 4 / 5), folds)
    tta, select_s, report_s, train_s = budget_for(k)
    return Plan(
        seed=seed,
        budget_s=budget_s,
        device=device,
        fingerprint=fingerprint,
        background=background,
        neutral=neutral,
        multilabel=multilabel,
        network=network,
        patch=patch,
        batch_size=batch_size,
        foreground_prob=0.5 if rare else 0.33,
        loss="auto" if multilabel else "ce_vnet_dice",  # multi-label: per-class BCE + Dice
        iterations=max(20, steps(k)),
        validations=validations,
        folds=k,
        selection=Selection(try_tta=tta),
        time_s={
            "planning": round(speed.planning_s, 1),
            "train": round(train_s, 1),
            "select": round(select_s, 1),
            "report": round(report_s, 1),
        },
        probe={
            "window_s": window_s,
            "numerics": speed.numerics,
            "step_bytes": speed.step_bytes,
            "available_bytes": speed.available_bytes,
            "train_step_s": training.step_s,
            "validation_s": training.validation_s,
            "validation_image_s": per_val_image,
            "startup_s": training.startup_s,
        },
    )
