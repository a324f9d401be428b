"""Inference task config: `model.gpu_device`, `mode` with every mode's settings and defaults.

One schema for an inference config file and for the inference settings a model card carries
(:attr:`unetkit.models.card.ModelCard.inference`): a card's settings can be saved, edited and passed back with
``--config``. No torch here (the card reads it).

Original behaviour: docs/original-behaviour.md, "Inference config".

Loading order, as the original: a config without a ``model`` key is the v1 (2018) layout and is converted first
(``mode.source`` → ``mode.name``, top-level ``model_classes`` → ``mode.model_classes``, every other top-level key
→ ``model``). The effective mode = the mode's defaults (suffix ``""``) ← the plugin default suffix ``"_unet"``
(**only** when the mode is ``full_image``) ← the user's ``mode``. Everything is then validated strictly.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

from unetkit.config_base import ConfigModel, did_you_mean, merge, read_json, validate_config
from unetkit.errors import ConfigError

MATCH_ALL = "__all__"
DEFAULT_MODEL_SUFFIX = "_unet"  # the UNet plugin's default, applied to full_image only
MODE_NAMES = ("full_image", "roi", "bboxes", "sliding_window")
_SIZE_RE = re.compile(r"^-?[0-9]+(%|px)$")


class _Strict(ConfigModel):
    model_config = ConfigDict(frozen=True)


def _check_names(value):
    if value == MATCH_ALL:
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError('must be "__all__" or a list of non-empty names')
    return value


NameList = Annotated[str | list[str], BeforeValidator(_check_names)]


def is_name_included(name: str, names: NameList) -> bool:
    """The original's `is_name_included`: ``"__all__"`` or membership in the list."""
    return names == MATCH_ALL or (not isinstance(names, str) and name in names)


class Renamer(_Strict):
    """`model_classes` / `model_tags`: keep the listed names (or all) and append ``add_suffix``."""

    legacy_keys = ("save_classes",)
    save_names: NameList = MATCH_ALL
    add_suffix: str = ""

    @model_validator(mode="before")
    @classmethod
    def _legacy_key(cls, data):
        if isinstance(data, dict) and "save_classes" in data:
            if "save_names" in data:
                raise ValueError("give `save_names` or its deprecated alias `save_classes`, not both")
            data = dict(data)
            data["save_names"] = data.pop("save_classes")
        return data

    def rename(self, name: str) -> str | None:
        """New name, or None when the name is filtered out."""
        return name + self.add_suffix if is_name_included(name, self.save_names) else None


class Bounds(_Strict):
    """Per-side sizes ``"<int>px"`` or ``"<int>%"`` (negative allowed), as the original's schema."""

    left: str = "0px"
    top: str = "0px"
    right: str = "0px"
    bottom: str = "0px"

    @field_validator("left", "top", "right", "bottom")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not _SIZE_RE.match(value):
            raise ValueError(f"{value!r} must look like '5px' or '10%' (an integer, optionally negative)")
        return value


def side_pixels(value: str, side: int) -> int:
    """``"12px"`` → 12; ``"10%"`` → ``int(side * 10 / 100)`` (truncation toward zero, as the original)."""
    if value.endswith("px"):
        return int(value[:-2])
    return int(side * float(value[:-1]) / 100.0)


class Size(_Strict):
    """The sliding window's size in pixels."""

    width: PositiveInt = 128
    height: PositiveInt = 128


class Overlap(_Strict):
    """The least overlap of neighbouring windows in pixels: the stride is the window size minus this."""

    x: NonNegativeInt = 0
    y: NonNegativeInt = 0


class ClassCleanup(_Strict):
    """Clean-up of one class's predicted region (``mode.postprocess.<model class title>``; unetkit extension)."""

    min_size: int = Field(0, ge=0)  # remove components with fewer pixels
    keep_largest: int | None = Field(None, ge=1)  # keep only the k largest components
    fill_holes: bool = False


class _ModeBase(_Strict):
    model_classes: Renamer = Renamer()
    model_tags: Renamer = Renamer()
    save_probabilities: bool = False
    # unetkit extensions (docs/inference.md, "Threshold and clean-up")
    # binary models: foreground where p >= threshold; multi-label: one number, or {model class title: number}
    threshold: float | dict[str, float] | None = None
    postprocess: dict[str, ClassCleanup] = {}  # model class title -> clean-up
    tta: bool = False  # average over horizontal/vertical flips (4x the compute)

    @field_validator("threshold")
    @classmethod
    def _probabilities(cls, value):
        for v in value.values() if isinstance(value, dict) else [value]:
            if v is not None and not 0 < v <= 1:
                raise ValueError(f"a threshold must be > 0 and <= 1 (got {v})")
        return value


class FullImageMode(_ModeBase):
    name: Literal["full_image"] = "full_image"


class RoiMode(_ModeBase):
    name: Literal["roi"] = "roi"
    bounds: Bounds = Bounds()
    save: bool = False
    class_name: str = Field("inference_roi", min_length=1)


class BboxesMode(_ModeBase):
    name: Literal["bboxes"] = "bboxes"
    from_classes: NameList = MATCH_ALL
    padding: Bounds = Bounds()
    save: bool = False
    add_suffix: str = "_input_bbox"


class SlidingWindowMode(_ModeBase):
    name: Literal["sliding_window"] = "sliding_window"
    window: Size = Size()
    min_overlap: Overlap = Overlap()
    save: bool = False
    class_name: str = Field("sliding_window", min_length=1)
    # unetkit extensions (not in the original schema)
    blend: Literal["constant", "gaussian"] = "constant"  # constant = the original's plain summation
    batch_size: int | None = Field(None, ge=1)  # windows per forward pass; None: 1–2 on CPU, 8 on CUDA


Mode = Annotated[FullImageMode | RoiMode | BboxesMode | SlidingWindowMode, Field(discriminator="name")]


class ModelSection(_Strict):
    gpu_device: NonNegativeInt = 0


class InferenceConfig(_Strict):
    config_name = "inference config"
    model: ModelSection = ModelSection()
    mode: Mode = FullImageMode(model_classes=Renamer(add_suffix=DEFAULT_MODEL_SUFFIX))

    def to_json(self) -> dict:
        """The config as a file holds it (what ``parse_config`` reads back to an equal config)."""
        return self.model_dump(mode="json", exclude_none=True)

    def with_mode(self, **changes) -> InferenceConfig:
        """A copy whose mode has ``changes`` (e.g. ``tta=True``), validated again."""
        doc = self.to_json()
        doc["mode"] = {**doc["mode"], **changes}
        return parse_config(doc, file=self.source)


def convert_v1(raw: dict) -> dict:
    """The original's `maybe_convert_from_v1_inference_task_config` (no-op when a ``model`` key exists)."""
    if "model" in raw:
        return raw
    mode = copy.deepcopy(raw.get("mode", {}))
    if isinstance(mode, dict):
        if "source" in mode:
            mode["name"] = mode.pop("source")
        mode["model_classes"] = copy.deepcopy(raw.get("model_classes", {}))
    model = {k: copy.deepcopy(v) for k, v in raw.items() if k not in ("mode", "model_classes")}
    return {"mode": mode, "model": model}


def effective_mode(user_mode: dict, *, default_suffix: str = DEFAULT_MODEL_SUFFIX) -> dict:
    """Mode defaults ← plugin default suffix (full_image only) ← user settings (a dict, not validated yet)."""
    name = user_mode.get("name", "full_image")
    merged: dict = {"name": name}
    if name == "full_image":
        merged["model_classes"] = {"add_suffix": default_suffix}
        merged["model_tags"] = {"add_suffix": default_suffix}
    return merge(merged, user_mode)


def parse_config(
    raw: object, *, file: object = None, default_suffix: str = DEFAULT_MODEL_SUFFIX
) -> InferenceConfig:
    """Validate a config dict (v1 converted, defaults applied); errors → ConfigError naming file and JSON path."""
    file = InferenceConfig.config_name if file is None else file
    if not isinstance(raw, dict):
        raise ConfigError("the inference config must be a JSON object", file=file, json_path="$")
    was_v1 = "model" not in raw
    doc = convert_v1(raw)
    mode = doc.get("mode", {})
    if not isinstance(mode, dict):
        raise ConfigError("must be an object", file=file, json_path="$.mode")
    name = mode.get("name", "full_image")
    if name not in MODE_NAMES:
        hint = (
            " (sliding_window_det is for detectors; use sliding_window)"
            if name == "sliding_window_det"
            else did_you_mean(str(name), MODE_NAMES)
        )
        raise ConfigError(
            f"unknown mode {name!r}; expected one of {', '.join(MODE_NAMES)}{hint}",
            file=file,
            json_path="$.mode.name",
        )
    doc = {**doc, "mode": effective_mode(mode, default_suffix=default_suffix)}
    if isinstance(doc.get("model"), dict):
        doc["model"] = merge({"gpu_device": 0}, doc["model"])
    try:
        config = validate_config(InferenceConfig, doc, file=file)
    except ConfigError as exc:
        if not (was_v1 and (exc.json_path or "").startswith("$.model")):
            raise
        hint = (
            " (a config without a `model` key is read as the v1 layout: its top-level keys move to `model`)"
        )
        raise ConfigError(exc.message + hint, file=exc.file, json_path=exc.json_path) from None
    mode = config.mode
    if isinstance(mode, SlidingWindowMode) and (
        mode.window.width - mode.min_overlap.x < 1 or mode.window.height - mode.min_overlap.y < 1
    ):
        raise config.error(
            "Wrong sliding window settings, overlap is too high.", json_path="$.mode.min_overlap"
        )
    return config


def load_config(path: str | Path, **kwargs) -> InferenceConfig:
    """Read and validate an inference config JSON file. Outside the v1 layout its mode must have a ``name``."""
    raw = read_json(path, what="inference config")
    config = parse_config(raw, file=path, **kwargs)
    mode = raw.get("mode") if isinstance(raw, dict) and "model" in raw else None
    if isinstance(mode, dict) and mode and "name" not in mode:
        raise ConfigError(
            f"the mode has no 'name'; expected one of {', '.join(MODE_NAMES)}",
            file=path,
            json_path="$.mode.name",
        )
    return config


def check_known_names(names: NameList, known: list[str], *, json_path: str, what: str) -> None:
    """ConfigError when the list ``names`` holds a name that is not in ``known`` (the valid names are listed)."""
    if isinstance(names, str):
        return
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown {what} {unknown[0]!r}{did_you_mean(unknown[0], known)}; valid names: "
            + (", ".join(repr(k) for k in known) or "none"),
            json_path=json_path,
        )
