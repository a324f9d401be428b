"""Training config: the original UNet V2 fields plus unetkit extensions under the ``"unetkit"`` key.

Original behaviour: docs/original-behaviour.md, "Training config".

Validated once at load on :mod:`unetkit.config_base` (unknown keys are errors, like the original's
``additionalProperties: false``). Any problem becomes one :class:`~unetkit.errors.ConfigError` naming the file
and the JSON path.

Documented difference: ``lr`` defaults to 0.001 (the documented/UI value), not the original code's 0.1.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import ConfigDict, Field, NonNegativeInt, PositiveInt, model_validator

from unetkit.config_base import ConfigModel, read_json, validate_config

INPUT_SIZE_MULTIPLE = 16


class _Strict(ConfigModel):
    model_config = ConfigDict(strict=True)


Name = Annotated[str, Field(min_length=1)]
Value = TypeVar("Value")


class PerSplit(_Strict, Generic[Value]):
    """One value per dataset split, written ``{"train": ..., "val": ...}`` as in the original."""

    train: Value
    val: Value


# Named classes for each value type: spawned training processes (DDP on CPU) pickle the config, and pickle
# finds a class by its module-level name — a bare ``PerSplit[int]`` has none.
class PositivePerSplit(PerSplit[PositiveInt]):
    pass


class CountPerSplit(PerSplit[NonNegativeInt]):
    pass


class NamePerSplit(PerSplit[Name]):
    pass


def _per_split(train: object, val: object) -> Any:
    return Field({"train": train, "val": val}, validate_default=True)


class InputSize(_Strict):
    width: int = Field(128, ge=1, multiple_of=INPUT_SIZE_MULTIPLE)
    height: int = Field(128, ge=1, multiple_of=INPUT_SIZE_MULTIPLE)


class SpecialClasses(_Strict):
    background: str = Field("bg", min_length=1)
    neutral: str = Field("neutral", min_length=1)


class LrDecreasing(_Strict):
    patience: int = Field(1000, ge=1)
    lr_divisor: float = Field(5.0, gt=0)


class LossWeights(_Strict):
    bce: float = Field(1.0, ge=0)
    dice: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _not_both_zero(self) -> LossWeights:
        if self.bce + self.dice <= 0:
            raise ValueError("bce and dice weights cannot both be 0")
        return self


# ----------------------------------------------------------------------------------------- extensions


class LossOptions(_Strict):
    """``auto`` = the original: BCE+Dice for one class + bg, cross-entropy otherwise."""

    name: Literal["auto", "bce_dice", "ce", "focal", "vnet_dice", "ce_vnet_dice"] = "auto"
    class_weights: list[float] | dict[str, float] | None = None
    focal_gamma: float = Field(2.0, ge=0)


class AugmentOptions(_Strict):
    """Random augmentation applied to training samples only (labels always use nearest interpolation)."""

    hflip: float = Field(0.0, ge=0, le=1)
    vflip: float = Field(0.0, ge=0, le=1)
    rot90: float = Field(0.0, ge=0, le=1)
    scale: list[float] | None = Field(None, min_length=2, max_length=2)
    brightness: float = Field(0.0, ge=0, le=1)
    contrast: float = Field(0.0, ge=0, le=1)
    gamma: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _check_scale(self) -> AugmentOptions:
        if self.scale is not None and not (0 < self.scale[0] <= self.scale[1]):
            raise ValueError("scale must be [min, max] with 0 < min <= max")
        return self


class SchedulerOptions(_Strict):
    """Per-iteration LR factor on top of the original patience policy (``none`` = original behaviour)."""

    name: Literal["none", "cosine", "poly"] = "none"
    warmup_iters: int = Field(0, ge=0)
    hold_iters: int = Field(0, ge=0)  # the decay starts here when this is after the warm-up
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    power: float = Field(0.9, gt=0)
    stretch_at: int = Field(
        0, ge=0
    )  # a second refit: from here the decay goes on from stretch_from to the end
    stretch_from: float = Field(0.0, ge=0, le=1)


class OptimizerOptions(_Strict):
    """``adam`` (the original's); ``sgd``: SGD with (Nesterov) momentum and weight decay, nnU-Net's defaults."""

    name: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(0.99, ge=0, lt=1)  # sgd only
    nesterov: bool = True  # sgd only
    weight_decay: float = Field(0.0, ge=0)


class PatchSampling(_Strict):
    """``resize`` = original (whole image resized to input_size). ``random_crop``: training samples are
    random input_size crops of the full-resolution image (``foreground_prob`` centres a crop on a
    non-background pixel); validation tiles the full-resolution image with input_size windows."""

    mode: Literal["resize", "random_crop"] = "resize"
    foreground_prob: float = Field(0.0, ge=0, le=1)


class UnetkitOptions(_Strict):
    model: str = "unet_v2"
    model_options: dict[str, Any] = Field(default_factory=dict)
    loss: LossOptions = Field(default_factory=LossOptions)
    optimizer: OptimizerOptions = Field(default_factory=OptimizerOptions)
    amp: Literal["auto", "off", "fp16", "bf16"] = "auto"  # auto: bf16 on CPUs with native bf16, AMP on CUDA
    compile: Literal["off", "on", "auto"] = "off"  # torch.compile; auto: when a short probe shows a gain
    seed: int | None = Field(None, ge=0)
    deterministic: bool = False
    augment: AugmentOptions = Field(default_factory=AugmentOptions)
    scheduler: SchedulerOptions = Field(default_factory=SchedulerOptions)
    patch_sampling: PatchSampling = Field(default_factory=PatchSampling)
    max_nonfinite_steps: int = Field(5, ge=1)
    grad_clip: float | None = Field(None, gt=0)
    ddp_cpu_processes: int = Field(0, ge=0)
    cache_mb: int = Field(1024, ge=0)
    log_every: int = Field(1, ge=1)
    multilabel: bool = False  # one sigmoid channel per class, overlaps allowed (default: softmax)


class TrainConfig(_Strict):
    """The merged training config (original fields + ``unetkit`` extensions)."""

    config_name = "training config"

    lr: float = Field(0.001, gt=0)
    epochs: int = Field(2, ge=1)
    val_every: float = Field(0.5, gt=0)
    batch_size: PositivePerSplit = _per_split(1, 1)
    input_size: InputSize = Field(default_factory=InputSize)
    gpu_devices: list[NonNegativeInt] = Field(default_factory=lambda: [0], min_length=1)
    data_workers: CountPerSplit = _per_split(0, 0)
    dataset_tags: NamePerSplit = _per_split("train", "val")
    special_classes: SpecialClasses = Field(default_factory=SpecialClasses)
    weights_init_type: Literal["transfer_learning", "continue_training"] = "transfer_learning"
    allow_corrupted_samples: CountPerSplit = _per_split(0, 0)
    momentum: float = Field(0.9, gt=0)
    lr_decreasing: LrDecreasing = Field(default_factory=LrDecreasing)
    loss_weights: LossWeights = Field(default_factory=LossWeights)
    validate_with_model_eval: bool = True
    unetkit: UnetkitOptions = Field(default_factory=UnetkitOptions)

    @model_validator(mode="before")
    @classmethod
    def _merge_partial_splits(cls, data: Any) -> Any:
        """A partial per-split object (``{"train": 4}``) takes the other split from the default."""
        if not isinstance(data, dict):
            return data
        defaults = {
            key: field.default for key, field in cls.model_fields.items() if isinstance(field.default, dict)
        }
        return {
            key: {**defaults[key], **value} if key in defaults and isinstance(value, dict) else value
            for key, value in data.items()
        }

    def settings(self) -> dict:
        """The full merged config as JSON (saved as ``settings`` in every checkpoint)."""
        return self.model_dump(mode="json")


def parse_config(data: Any, *, file: object | None = None, warn: bool = True) -> TrainConfig:
    """Validate a config dict (missing fields take the defaults of docs/training.md, nested objects merge)."""
    cfg = validate_config(TrainConfig, data, file=file)
    if cfg.special_classes.background == cfg.special_classes.neutral:
        raise cfg.error(
            "Non-unique special classes in train config (background == neutral).",
            json_path="$.special_classes",
        )
    if cfg.unetkit.multilabel and cfg.unetkit.loss.name not in ("auto", "bce_dice"):
        raise cfg.error(
            "multi-label training uses per-class BCE + Dice (loss 'auto' or 'bce_dice'), not "
            f"{cfg.unetkit.loss.name!r}",
            json_path="$.unetkit.loss.name",
        )
    if len(set(cfg.gpu_devices)) != len(cfg.gpu_devices):
        raise cfg.error(f"duplicate device ids {cfg.gpu_devices}", json_path="$.gpu_devices")
    if cfg.val_every > cfg.epochs:
        raise cfg.error(
            f"val_every ({cfg.val_every}) is larger than epochs ({cfg.epochs}): no validation and therefore no "
            "checkpoint would ever be produced",
            json_path="$.val_every",
        )
    if warn and "momentum" in data:
        warnings.warn(
            "config field 'momentum' is accepted for compatibility but ignored: the optimiser is Adam, or SGD "
            "with unetkit.optimizer's own momentum",
            UserWarning,
            stacklevel=2,
        )
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config JSON file."""
    return parse_config(read_json(path, what="training config"), file=path)


def check_model_stride(cfg: TrainConfig, stride: int) -> None:
    """Input sizes must be multiples of the model's total downsampling factor."""
    for key in ("width", "height"):
        value = getattr(cfg.input_size, key)
        if value % stride:
            raise cfg.error(
                f"must be a multiple of {stride} for model {cfg.unetkit.model!r} (got {value})",
                json_path=f"$.input_size.{key}",
            )
