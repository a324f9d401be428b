"""Training config: the original UNet V2 fields plus unetkit extensions under the ``"unetkit"`` key.

Original behaviour: docs/original-behaviour.md, "Training config".

Validated once at load with pydantic (unknown keys are errors, like the original's ``additionalProperties:
false``). Any problem becomes one :class:`~unetkit.errors.ConfigError` naming the JSON path.

Documented difference: ``lr`` defaults to 0.001 (the documented/UI value), not the original code's 0.1.
"""

from __future__ import annotations

import difflib
import json
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from unetkit.errors import ConfigError, json_path

INPUT_SIZE_MULTIPLE = 16


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=False)


class TrainVal(_Strict):
    train: int = Field(1, ge=1)
    val: int = Field(1, ge=1)


class Workers(_Strict):
    train: int = Field(0, ge=0)
    val: int = Field(0, ge=0)


class Corrupted(_Strict):
    train: int = Field(0, ge=0)
    val: int = Field(0, ge=0)


class InputSize(_Strict):
    width: int = Field(128, ge=1, multiple_of=INPUT_SIZE_MULTIPLE)
    height: int = Field(128, ge=1, multiple_of=INPUT_SIZE_MULTIPLE)


class DatasetTags(_Strict):
    train: str = Field("train", min_length=1)
    val: str = Field("val", min_length=1)


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
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    power: float = Field(0.9, gt=0)


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
    amp: Literal["off", "fp16", "bf16"] = "off"
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


class TrainConfig(_Strict):
    """The merged training config (original fields + ``unetkit`` extensions)."""

    lr: float = Field(0.001, gt=0)
    epochs: int = Field(2, ge=1)
    val_every: float = Field(0.5, gt=0)
    batch_size: TrainVal = Field(default_factory=TrainVal)
    input_size: InputSize = Field(default_factory=InputSize)
    gpu_devices: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    data_workers: Workers = Field(default_factory=Workers)
    dataset_tags: DatasetTags = Field(default_factory=DatasetTags)
    special_classes: SpecialClasses = Field(default_factory=SpecialClasses)
    weights_init_type: Literal["transfer_learning", "continue_training"] = "transfer_learning"
    allow_corrupted_samples: Corrupted = Field(default_factory=Corrupted)
    momentum: float = Field(0.9, gt=0)
    lr_decreasing: LrDecreasing = Field(default_factory=LrDecreasing)
    loss_weights: LossWeights = Field(default_factory=LossWeights)
    validate_with_model_eval: bool = True
    unetkit: UnetkitOptions = Field(default_factory=UnetkitOptions)

    def settings(self) -> dict:
        """The full merged config as JSON (saved as ``settings`` in every checkpoint)."""
        return self.model_dump(mode="json")


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    cls: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return []
        cls = field.annotation
    return list(getattr(cls, "model_fields", {}).keys())


def _error_from_validation(exc: ValidationError, file: object | None) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        known = _known_keys(TrainConfig, loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        msg = f"unknown key {loc[-1]!r}" + (f" (did you mean {guess[0]!r}?)" if guess else "")
        if known:
            msg += f"; allowed keys: {', '.join(known)}"
    elif err["type"] == "multiple_of":
        msg = f"must be a multiple of {INPUT_SIZE_MULTIPLE} (got {err.get('input')})"
    elif "input" in err and err["type"] not in ("missing",):
        msg = f"{msg} (got {err['input']!r})"
    extra = len(exc.errors()) - 1
    if extra:
        msg += f" (and {extra} more problem{'s' if extra > 1 else ''})"
    return ConfigError(msg, file=file, json_path=json_path(loc))


def parse_config(data: Any, *, file: object | None = None, warn: bool = True) -> TrainConfig:
    """Validate a config dict (missing fields take the defaults of docs/training.md, nested objects merge)."""
    if not isinstance(data, dict):
        raise ConfigError("the training config must be a JSON object", file=file, json_path="$")
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise _error_from_validation(exc, file) from None
    if cfg.special_classes.background == cfg.special_classes.neutral:
        raise ConfigError(
            "Non-unique special classes in train config (background == neutral).",
            file=file,
            json_path="$.special_classes",
        )
    if len(set(cfg.gpu_devices)) != len(cfg.gpu_devices):
        raise ConfigError(f"duplicate device ids {cfg.gpu_devices}", file=file, json_path="$.gpu_devices")
    if cfg.val_every > cfg.epochs:
        raise ConfigError(
            f"val_every ({cfg.val_every}) is larger than epochs ({cfg.epochs}): no validation and therefore no "
            "checkpoint would ever be produced",
            file=file,
            json_path="$.val_every",
        )
    if warn and "momentum" in data:
        warnings.warn(
            "config field 'momentum' is accepted for compatibility but ignored: the optimiser is Adam",
            UserWarning,
            stacklevel=2,
        )
    return cfg


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config file not found", file=path) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", file=path
        ) from None
    return parse_config(data, file=path)


def check_model_stride(cfg: TrainConfig, stride: int, *, file: object | None = None) -> None:
    """Input sizes must be multiples of the model's total downsampling factor."""
    for key in ("width", "height"):
        value = getattr(cfg.input_size, key)
        if value % stride:
            raise ConfigError(
                f"must be a multiple of {stride} for model {cfg.unetkit.model!r} (got {value})",
                file=file,
                json_path=f"$.input_size.{key}",
            )
