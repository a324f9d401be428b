"""Checkpoint folders: ``model.pt`` (plain state dict) + ``config.json`` (see docs/ARCHITECTURE.md).

unet_v2 weights are stored with the original's ``module.`` key prefix so that Supervisely can read them and
original checkpoints load here. A folder whose config.json has no ``unetkit`` key is an original Supervisely
checkpoint and is rebuilt as ``unet_v2`` with ``settings.input_size``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from unetkit.errors import FormatError, UnetkitError
from unetkit.models.preprocess import IMAGENET_MEAN, IMAGENET_STD
from unetkit.models.registry import create_model
from unetkit.models.state_dict import (  # noqa: F401 - re-exported: the checkpoint API
    TransferReport,
    load_state_dict_flexible,
    load_state_file,
    normalize_state_dict,
    strip_wrapper_prefixes,
    transfer_weights,
    unwrap_model,
)

FORMAT_VERSION = 1
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
PREFIXED_MODELS = ("unet_v2",)  # saved with the DataParallel "module." prefix, like the original
INIT_ONLY_OPTIONS = ("encoder_weights",)  # only matter at creation; never re-applied when loading


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    model_name: str
    model_options: dict
    num_classes: int
    in_channels: int
    out_classes: list[dict]
    class_title_to_idx: dict[str, int]
    input_size: tuple[int, int]  # (width, height)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str
    settings: dict
    epoch: float | None = None
    val_metrics: dict = field(default_factory=dict)
    original: bool = False  # an original Supervisely checkpoint (no "unetkit" section)


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    info: CheckpointInfo


# --------------------------------------------------------------------------------------------- files


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    dir,
    model: nn.Module,
    *,
    model_name: str,
    model_options: dict,
    settings: dict,
    out_classes: list[dict],
    class_title_to_idx: dict[str, int],
    extra: dict | None = None,
) -> Path:
    """Write ``dir/model.pt`` + ``dir/config.json`` atomically and return ``dir``.

    ``extra`` is merged into the ``unetkit`` section (``input_size``, ``normalization``, ``resize``, ``epoch``,
    ``val_metrics``, ...). ``input_size`` defaults to ``settings["input_size"]``.
    A new folder is written under a temporary name and renamed; an existing one gets each file replaced.
    """
    dir = Path(dir)
    net = unwrap_model(model)
    prefix = "module." if model_name in PREFIXED_MODELS else ""
    state = {prefix + strip_wrapper_prefixes(k): v.detach().cpu() for k, v in net.state_dict().items()}
    num_classes = (
        max(class_title_to_idx.values()) + 1 if class_title_to_idx else getattr(net, "num_classes", 0)
    )
    model_classes = getattr(net, "num_classes", num_classes)
    if model_classes != num_classes:
        raise UnetkitError(
            f"class_title_to_idx implies {num_classes} output classes but the model has {model_classes}"
        )
    section = {
        "format_version": FORMAT_VERSION,
        "model": model_name,
        "model_options": {k: v for k, v in model_options.items() if k not in INIT_ONLY_OPTIONS},
        "in_channels": int(getattr(net, "in_channels", 3)),
        "input_size": settings.get("input_size"),
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "resize": "bicubic",
    }
    section.update(extra or {})
    size = section.get("input_size")
    if not (
        isinstance(size, dict)
        and all(isinstance(size.get(k), int) and size[k] > 0 for k in ("width", "height"))
    ):
        raise UnetkitError(
            f"input_size must be {{'width': int, 'height': int}} (from settings or extra), got {size!r}",
            file=dir,
        )
    config = {
        "settings": settings,
        "out_classes": out_classes,
        "class_title_to_idx": class_title_to_idx,
        "unetkit": section,
    }
    config_bytes = json.dumps(config, indent=2, default=_json_default).encode("utf-8")
    if dir.exists() and not dir.is_dir():
        raise UnetkitError("cannot write a checkpoint: the path exists and is not a folder", file=dir)
    dir.parent.mkdir(parents=True, exist_ok=True)
    if dir.exists():
        target = dir
    else:
        target = Path(tempfile.mkdtemp(prefix=f".{dir.name}.", suffix=".tmp", dir=dir.parent))
        os.chmod(target, 0o777 & ~_UMASK)  # mkdtemp creates 0700
    try:
        _atomic_write(target / MODEL_FILE, lambda fh: torch.save(state, fh))
        _atomic_write(target / CONFIG_FILE, lambda fh: fh.write(config_bytes))
        if target != dir:
            os.replace(target, dir)
    except BaseException:
        if target != dir:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return dir


def _require(cond: bool, message: str, file: Path, json_path: str) -> None:
    if not cond:
        raise FormatError(message, file=file, json_path=json_path)


def _size_pair(value, file: Path, json_path: str) -> tuple[int, int]:
    ok = isinstance(value, dict) and all(
        isinstance(value.get(k), int) and not isinstance(value.get(k), bool) and value[k] > 0
        for k in ("width", "height")
    )
    _require(ok, f"expected {{'width': int > 0, 'height': int > 0}}, got {value!r}", file, json_path)
    return int(value["width"]), int(value["height"])


def resolve_checkpoint_dir(path) -> Path:
    """A checkpoint folder from what users pass as ``--model``.

    A checkpoint folder (holding ``config.json``) is returned as is; a training run folder gives its best
    checkpoint (``RUN/checkpoints/best.json``, else ``last.json``); ``RUN/checkpoints/best`` or ``.../last``
    follow that pointer file. Anything else is returned unchanged (and fails with a clear error when read).
    """
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    pointers = []
    if path.name in ("best", "last") and not path.exists():
        pointers.append(path.parent / f"{path.name}.json")
    pointers += [path / "checkpoints" / "best.json", path / "checkpoints" / "last.json"]
    for pointer in pointers:
        if pointer.is_file():
            try:
                target = json.loads(pointer.read_text(encoding="utf-8"))["path"]
            except (ValueError, KeyError, TypeError) as exc:
                raise FormatError(
                    f"not a checkpoint pointer: {exc}", file=pointer, json_path="$.path"
                ) from None
            return pointer.parent.parent / target  # pointers name the folder relative to the run folder
    return path


def read_checkpoint_info(dir) -> CheckpointInfo:
    """Parse and validate ``dir/config.json`` (FormatError with the JSON path on problems).

    ``dir`` may also be a training run folder or a ``best`` / ``last`` pointer (see resolve_checkpoint_dir).
    """
    dir = resolve_checkpoint_dir(dir)
    if not dir.is_dir():
        raise UnetkitError("checkpoint folder not found", file=dir)
    cfg_path = dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise UnetkitError(f"not a checkpoint folder: {CONFIG_FILE} is missing", file=dir)
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"invalid JSON: {exc}", file=cfg_path, json_path="$") from None
    _require(isinstance(config, dict), "expected a JSON object", cfg_path, "$")
    settings = config.get("settings", {})
    _require(isinstance(settings, dict), "expected an object", cfg_path, "$.settings")
    out_classes = config.get("out_classes")
    _require(isinstance(out_classes, list), "expected a list of class objects", cfg_path, "$.out_classes")
    for i, cls in enumerate(out_classes):
        ok = isinstance(cls, dict) and isinstance(cls.get("title"), str)
        _require(ok, "expected an object with a string 'title'", cfg_path, f"$.out_classes[{i}]")
    mapping = config.get("class_title_to_idx")
    _require(
        isinstance(mapping, dict) and bool(mapping),
        "expected a non-empty object",
        cfg_path,
        "$.class_title_to_idx",
    )
    for title, idx in mapping.items():
        ok = isinstance(idx, int) and not isinstance(idx, bool) and idx >= 0
        _require(ok, f"expected an integer >= 0, got {idx!r}", cfg_path, f"$.class_title_to_idx.{title}")
    num_classes = max(mapping.values()) + 1

    section = config.get("unetkit")
    if section is None:  # original Supervisely checkpoint
        size = _size_pair(settings.get("input_size"), cfg_path, "$.settings.input_size")
        return CheckpointInfo(
            path=dir, model_name="unet_v2", model_options={}, num_classes=num_classes, in_channels=3,
            out_classes=out_classes, class_title_to_idx=mapping, input_size=size, mean=IMAGENET_MEAN,
            std=IMAGENET_STD, resize="bicubic", settings=settings, original=True,
        )  # fmt: skip
    _require(isinstance(section, dict), "expected an object", cfg_path, "$.unetkit")
    version = section.get("format_version")
    _require(
        version == FORMAT_VERSION,
        f"unsupported format_version {version!r}",
        cfg_path,
        "$.unetkit.format_version",
    )
    name = section.get("model")
    _require(isinstance(name, str), "expected a model name", cfg_path, "$.unetkit.model")
    options = section.get("model_options", {})
    _require(isinstance(options, dict), "expected an object", cfg_path, "$.unetkit.model_options")
    in_channels = section.get("in_channels", 3)
    _require(
        isinstance(in_channels, int) and in_channels > 0,
        "expected an integer > 0",
        cfg_path,
        "$.unetkit.in_channels",
    )
    size_value = section.get("input_size") or settings.get("input_size")
    size = _size_pair(size_value, cfg_path, "$.unetkit.input_size")
    norm = section.get("normalization", {"mean": IMAGENET_MEAN, "std": IMAGENET_STD})
    stats = {}
    for key in ("mean", "std"):
        vals = norm.get(key) if isinstance(norm, dict) else None
        ok = isinstance(vals, (list, tuple)) and len(vals) > 0
        ok = ok and all(isinstance(v, (int, float)) and math.isfinite(v) for v in vals)
        ok = ok and (key == "mean" or all(v > 0 for v in vals))
        _require(
            ok, "expected a list of finite numbers (std > 0)", cfg_path, f"$.unetkit.normalization.{key}"
        )
        stats[key] = tuple(float(v) for v in vals)
    resize = section.get("resize", "bicubic")
    _require(
        resize in ("bicubic", "bilinear", "nearest"),
        f"unknown resize {resize!r}",
        cfg_path,
        "$.unetkit.resize",
    )
    epoch = section.get("epoch")
    val_metrics = section.get("val_metrics") or {}
    return CheckpointInfo(
        path=dir, model_name=name, model_options=dict(options), num_classes=num_classes, in_channels=in_channels,
        out_classes=out_classes, class_title_to_idx=mapping, input_size=size, mean=stats["mean"],
        std=stats["std"], resize=resize, settings=settings,
        epoch=float(epoch) if isinstance(epoch, (int, float)) else None, val_metrics=val_metrics,
    )  # fmt: skip


def load_checkpoint(dir, map_location="cpu") -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint folder, load its weights strictly, and return it in eval mode."""
    info = read_checkpoint_info(dir)
    dir = info.path
    options = {k: v for k, v in info.model_options.items() if k not in INIT_ONLY_OPTIONS}
    try:
        model = create_model(info.model_name, info.num_classes, in_channels=info.in_channels, **options)
    except UnetkitError as exc:
        raise UnetkitError(f"cannot rebuild the model: {exc}", file=Path(dir) / CONFIG_FILE) from None
    weights = Path(dir) / MODEL_FILE
    state = load_state_file(weights)
    try:
        load_state_dict_flexible(model, state, strict=True)
    except UnetkitError as exc:
        raise UnetkitError(exc.message, file=weights) from None
    model.to(map_location)
    model.eval()
    return LoadedCheckpoint(model=model, info=info)
