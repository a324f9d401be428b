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


@dataclass
class TransferReport:
    """Result of :func:`transfer_weights`; all lists hold state-dict key names of the target model."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # matched a skip substring
    missing: list[str] = field(default_factory=list)  # in the model, not in the state → kept their init
    unexpected: list[str] = field(default_factory=list)  # in the state, not in the model → ignored
    shape_mismatches: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (key, state, model)


# --------------------------------------------------------------------------------------------- state dicts


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DataParallel/DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def _strip(key: str, prefixes=("module.", "_orig_mod.")) -> str:
    changed = True
    while changed:
        changed = False
        for p in prefixes:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    return key


def normalize_state_dict(state: dict, model: nn.Module) -> dict[str, torch.Tensor]:
    """Map a state dict's keys onto ``model``'s naming (adds/strips ``module.`` / ``_orig_mod.``).

    Non-tensor entries (e.g. milesial's ``mask_values``) are dropped.
    """
    if not isinstance(state, dict):
        raise UnetkitError(
            f"expected a state dict (a mapping of names to tensors), got {type(state).__name__}"
        )
    target_keys = list(model.state_dict().keys())
    bare = {_strip(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    # prefix shared by every target key (e.g. "module." for a DataParallel model)
    prefix = ""
    if target_keys:
        first = target_keys[0]
        prefix = first[: len(first) - len(_strip(first))]
        if not all(k.startswith(prefix) for k in target_keys):
            prefix = ""
    return {prefix + k: v for k, v in bare.items()}


def _describe(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys)} in all)" if len(keys) > limit else "")


def load_state_dict_flexible(model: nn.Module, state: dict, strict: bool = True):
    """``model.load_state_dict`` that accepts keys with or without ``module.``; strict errors are UnetkitError."""
    mapped = normalize_state_dict(state, model)
    own = model.state_dict()
    mismatched = [
        f"{k} (file {tuple(v.shape)} vs model {tuple(own[k].shape)})"
        for k, v in mapped.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if strict:
        # BatchNorm fills num_batches_tracked itself for pre-0.4.1 saves; do not demand it.
        missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in mapped if k not in own]
        problems = []
        if missing:
            problems.append(f"missing keys: {_describe(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_describe(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches: {_describe(mismatched)}")
        if problems:
            raise UnetkitError(f"weights do not fit {type(model).__name__}: " + "; ".join(problems))
    elif mismatched:
        raise UnetkitError(
            f"weights do not fit {type(model).__name__}: shape mismatches: {_describe(mismatched)}"
        )
    return model.load_state_dict(mapped, strict=strict)


def transfer_weights(model: nn.Module, state: dict, skip_substrings=("last_conv",)) -> TransferReport:
    """Copy every key of ``state`` that exists in ``model`` with the same shape (transfer learning).

    Keys containing a ``skip_substrings`` entry are not copied (the original dropped ``last_conv``).
    Shape mismatches are reported, not raised; the caller decides.
    """
    mapped = normalize_state_dict(state, model)
    own = model.state_dict()
    report = TransferReport()
    for key, value in mapped.items():
        if any(s in key for s in skip_substrings):
            report.skipped.append(key)
        elif key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.shape_mismatches.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            report.copied.append(key)
    report.missing = [k for k in own if k not in mapped]
    with torch.no_grad():
        for key in report.copied:
            own[key].copy_(mapped[key])
    return report


# --------------------------------------------------------------------------------------------- files


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
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
    state = {prefix + _strip(k): v.detach().cpu() for k, v in net.state_dict().items()}
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
    dir.parent.mkdir(parents=True, exist_ok=True)
    if dir.exists():
        target = dir
    else:
        target = Path(tempfile.mkdtemp(prefix=f".{dir.name}.", suffix=".tmp", dir=dir.parent))
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


def read_checkpoint_info(dir) -> CheckpointInfo:
    """Parse and validate ``dir/config.json`` (FormatError with the JSON path on problems)."""
    dir = Path(dir)
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


def load_state_file(path) -> dict:
    """``torch.load(path, weights_only=True)`` with a clear UnetkitError for missing/corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise UnetkitError("weights file not found", file=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt / truncated / not a torch file / unsafe pickle
        raise UnetkitError(
            f"cannot read weights ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})", file=path
        ) from None
    if not isinstance(state, dict):
        raise UnetkitError(f"expected a state dict, found {type(state).__name__}", file=path)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def load_checkpoint(dir, map_location="cpu") -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint folder, load its weights strictly, and return it in eval mode."""
    info = read_checkpoint_info(dir)
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
