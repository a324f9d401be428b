"""The model card: everything about a trained model except its weights, in one validated type.

A :class:`ModelCard` is the only reader and writer of a checkpoint's ``config.json`` and of the ``unetkit``
metadata of an exported ONNX file; the predictor, serving (``/v1/model``), export and training all read it.
The file keeps the original Supervisely layout ``{settings, out_classes, class_title_to_idx}`` (byte-compatible)
and adds a ``unetkit`` section; a file without that section is an original Supervisely checkpoint (UNet V2 at
``settings.input_size``, ImageNet normalisation, bicubic resize). No torch here: a card can be read anywhere.

``inference`` is how the model is meant to be applied (mode, window, overlap, blending, TTA, threshold,
clean-up), in the schema of an inference config file (:mod:`unetkit.inference_config`): ``train`` writes what its
config implies, ``auto`` what it chose, and every consumer (``Predictor``, ``infer``, ``serve``, ONNX export)
reads it unless told otherwise. Cards without it (original checkpoints, older unetkit) hold None.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from unetkit.errors import ConfigError, FormatError, json_path
from unetkit.inference_config import InferenceConfig, parse_config
from unetkit.models.class_map import ClassMap, ModelClass  # noqa: F401 - part of the card's API
from unetkit.models.preprocess import IMAGENET_MEAN, IMAGENET_STD

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
ONNX_METADATA_KEY = "unetkit"
INIT_ONLY_OPTIONS = ("encoder_weights",)  # matter only when a model is created; never stored
_CARD_FIELDS = ("in_channels",)  # options the card holds as fields of its own
Resize = Literal["bicubic", "bilinear", "nearest"]
PixelType = Literal["uint8", "uint16", "float32"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Preprocessing(_Frozen):
    """How an image becomes the network input: resize to ``input_size`` (width, height), then
    ``(pixels / scale - mean) / std`` per channel. ``pixel_type`` is the bit depth the model was trained on."""

    input_size: tuple[int, int]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    scale: float = 255.0
    resize: Resize = "bicubic"
    pixel_type: PixelType = "uint8"


class Provenance(BaseModel):
    """Where the weights come from: training progress, validation metrics, seed, and the plan (if any)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    epoch: float | None = None
    iteration: int | None = None
    val_metrics: dict = Field(default_factory=dict)
    best_now: bool | None = None
    seed: int | None = None
    plan: dict | None = None


class ModelCard(_Frozen):
    """A trained model's description: architecture, inputs, classes, preprocessing, provenance."""

    model: str
    model_options: dict = Field(default_factory=dict)
    in_channels: int = 3
    classes: ClassMap
    preprocessing: Preprocessing
    provenance: Provenance = Field(default_factory=Provenance)
    inference: InferenceConfig | None = None  # how to apply the model (None: the consumer's own default)
    settings: dict = Field(default_factory=dict)  # the training config as the original saved it
    format_version: int = FORMAT_VERSION
    original: bool = False  # an original Supervisely checkpoint (no "unetkit" section)
    path: Path | None = None  # the checkpoint folder it was read from

    @field_validator("model_options")
    @classmethod
    def _drop_init_only(cls, value: dict) -> dict:
        return {k: v for k, v in value.items() if k not in INIT_ONLY_OPTIONS + _CARD_FIELDS}

    @model_validator(mode="after")
    def _statistics_cover_the_channels(self) -> ModelCard:
        p = self.preprocessing
        if min(len(p.mean), len(p.std)) < self.in_channels:
            raise ValueError(
                f"normalization has {min(len(p.mean), len(p.std))} value(s) for {self.in_channels} input channels"
            )
        return self

    # ---------------------------------------------------------------- shortcuts read everywhere
    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    @property
    def input_size(self) -> tuple[int, int]:
        return self.preprocessing.input_size

    # ---------------------------------------------------------------- config.json
    def to_config(self) -> dict:
        """The ``config.json`` object: the Supervisely layout plus the ``unetkit`` section."""
        p = self.preprocessing
        section: dict[str, Any] = {
            "format_version": self.format_version,
            "model": self.model,
            "model_options": dict(self.model_options),
            "in_channels": self.in_channels,
            "input_size": {"width": p.input_size[0], "height": p.input_size[1]},
            "normalization": {"mean": list(p.mean), "std": list(p.std)},
            "resize": p.resize,
        }
        if p.scale != 255.0:
            section["normalization"]["scale"] = p.scale
        if p.pixel_type != "uint8":
            section["pixel_type"] = p.pixel_type
        if self.classes.neutral is not None:
            section["neutral"] = self.classes.neutral
        if self.classes.multilabel:
            section["multilabel"] = True
        if self.inference is not None:
            section["inference"] = self.inference.to_json()
        section.update(self.provenance.model_dump(exclude_none=True, exclude_defaults=True))
        return {
            "settings": self.settings,
            "out_classes": [dict(c) for c in self.classes.out_classes],
            "class_title_to_idx": dict(self.classes.class_title_to_idx),
            "unetkit": section,
        }

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_config(), indent=2, default=_json_default).encode("utf-8")

    @classmethod
    def from_config(
        cls, config: object, *, file: object | None = None, path: Path | None = None
    ) -> ModelCard:
        """Validate a ``config.json`` object (FormatError naming ``file`` and the JSON path on problems)."""
        try:
            return _ConfigFile.model_validate(config).to_card(path)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise FormatError(err["msg"], file=file, json_path=json_path(err["loc"])) from None
        except FormatError as exc:
            raise FormatError(exc.message, file=file, json_path=exc.json_path) from None

    @classmethod
    def read(cls, folder) -> ModelCard:
        """Read and validate ``folder/config.json``."""
        folder = Path(folder)
        file = folder / CONFIG_FILE
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(f"not a checkpoint folder: {CONFIG_FILE} is missing", file=folder) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"invalid JSON: {exc}", file=file, json_path="$") from None
        return cls.from_config(config, file=file, path=folder)

    # ---------------------------------------------------------------- ONNX metadata
    def to_onnx_metadata(self, **extra) -> str:
        """The JSON stored under the ONNX ``unetkit`` metadata key (``extra``: stride, dynamic_spatial)."""
        config = self.to_config()
        meta = {**config.pop("unetkit"), **config, "num_classes": self.num_classes, **extra}
        return json.dumps(meta, default=_json_default)

    @classmethod
    def from_onnx_metadata(cls, raw: str | None, *, file: object | None = None) -> ModelCard:
        if raw is None:
            raise FormatError(
                f"no {ONNX_METADATA_KEY!r} metadata (not exported by unetkit export onnx)", file=file
            )
        try:
            meta = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FormatError(f"invalid {ONNX_METADATA_KEY!r} metadata: {exc}", file=file) from None
        if not isinstance(meta, dict):
            raise FormatError(f"{ONNX_METADATA_KEY!r} metadata is not a JSON object", file=file)
        section = {k: v for k, v in meta.items() if k not in _ONNX_ONLY}
        config = {
            k: section.pop(k) for k in ("settings", "out_classes", "class_title_to_idx") if k in section
        }
        config.setdefault("settings", {})
        config["unetkit"] = section
        return cls.from_config(config, file=file)

    # ---------------------------------------------------------------- description for users
    def describe(self) -> dict:
        """A JSON-ready summary (the ``/v1/model`` body's model part)."""
        p = self.preprocessing
        return {
            "architecture": self.model,
            "model_options": dict(self.model_options),
            "in_channels": self.in_channels,
            "input_size": {"width": p.input_size[0], "height": p.input_size[1]},
            "normalization": {"mean": list(p.mean), "std": list(p.std), "scale": p.scale},
            "resize": p.resize,
            "pixel_type": p.pixel_type,
            "num_classes": self.num_classes,
            "multilabel": self.classes.multilabel,
            "classes": [c.model_dump() for c in self.classes.classes],
            "class_title_to_idx": dict(self.classes.class_title_to_idx),
            "original_supervisely": self.original,
            "inference": None if self.inference is None else self.inference.to_json(),
            "provenance": self.provenance.model_dump(exclude_none=True),
        }


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# ------------------------------------------------------------------------------------ the file layout
_ONNX_ONLY = ("num_classes", "stride", "dynamic_spatial")


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


class _Size(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: StrictInt = Field(gt=0)
    height: StrictInt = Field(gt=0)


class _Normalization(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)
    scale: float = Field(default=255.0, gt=0, allow_inf_nan=False)

    @field_validator("mean", "std")
    @classmethod
    def _finite_values(cls, values: list[float], info) -> list[float]:
        for v in values:
            _finite(v)
            if info.field_name == "std" and v <= 0:
                raise ValueError("std values must be > 0")
        return values


class _Section(BaseModel):
    """The ``unetkit`` section; keys not listed here are provenance."""

    model_config = ConfigDict(extra="allow")
    format_version: Literal[1]
    model: str
    model_options: dict = Field(default_factory=dict)
    in_channels: StrictInt = Field(default=3, gt=0)
    input_size: _Size | None = None
    normalization: _Normalization = Field(
        default_factory=lambda: _Normalization(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
    )
    resize: Resize = "bicubic"
    pixel_type: PixelType = "uint8"
    neutral: str | None = None
    multilabel: bool = False
    inference: dict | None = None  # an inference config (validated by unetkit.inference_config)


class _OutClass(BaseModel):
    model_config = ConfigDict(extra="allow")
    title: str


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    settings: dict = Field(default_factory=dict)
    out_classes: list[_OutClass]
    class_title_to_idx: dict[str, StrictInt] = Field(min_length=1)
    unetkit: _Section | None = None

    @field_validator("class_title_to_idx")
    @classmethod
    def _non_negative(cls, mapping: dict[str, int]) -> dict[str, int]:
        bad = [t for t, i in mapping.items() if i < 0]
        if bad:
            raise ValueError(f"indices must be >= 0 (class {bad[0]!r})")
        return mapping

    def to_card(self, path: Path | None) -> ModelCard:
        out_classes = tuple(c.model_dump() for c in self.out_classes)
        section = self.unetkit
        size = section.input_size if section is not None and section.input_size else None
        if size is None:
            try:
                size = _Size.model_validate(self.settings.get("input_size"))
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ("settings", "input_size", *err["loc"])
                raise FormatError(err["msg"], json_path=json_path(loc)) from None
        if section is None:  # original Supervisely checkpoint
            return ModelCard(
                model="unet_v2", classes=ClassMap(out_classes=out_classes, class_title_to_idx=self.class_title_to_idx),
                preprocessing=Preprocessing(input_size=(size.width, size.height)), settings=self.settings,
                original=True, path=path,
            )  # fmt: skip
        norm = section.normalization
        inference = None
        if section.inference is not None:
            try:
                inference = parse_config(section.inference, file="model card")
            except ConfigError as exc:
                where = "$.unetkit.inference" + (exc.json_path or "$").removeprefix("$")
                raise FormatError(exc.message, json_path=where) from None
        return ModelCard(
            model=section.model,
            model_options=section.model_options,
            in_channels=section.in_channels,
            classes=ClassMap(
                out_classes=out_classes,
                class_title_to_idx=self.class_title_to_idx,
                neutral=section.neutral,
                multilabel=section.multilabel,
            ),
            preprocessing=Preprocessing(
                input_size=(size.width, size.height),
                mean=tuple(norm.mean),
                std=tuple(norm.std),
                scale=norm.scale,
                resize=section.resize,
                pixel_type=section.pixel_type,
            ),
            provenance=Provenance.model_validate(section.model_extra or {}),
            inference=inference,
            settings=self.settings,
            path=path,
        )


def check_class_count(card: ModelCard, model_classes: int | None) -> None:
    """A card's class map must match the network's number of output channels."""
    if model_classes is not None and model_classes != card.num_classes:
        raise ConfigError(
            f"class_title_to_idx implies {card.num_classes} output classes but the model has {model_classes}"
        )
