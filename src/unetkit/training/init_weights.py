"""``weights_init_type``: transfer_learning (all but the head) and continue_training (strict), as the original
(docs/original-behaviour.md, "Weight initialisation")."""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from unetkit.errors import ConfigError, UnetkitError
from unetkit.models.card import ClassMap
from unetkit.models.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    load_state_dict_flexible,
    load_state_file,
    normalize_state_dict,
    read_card,
    transfer_weights,
)

log = logging.getLogger("unetkit.training")


def _names(keys: list[str], limit: int = 10) -> str:
    return ", ".join(keys[:limit]) + (f", … ({len(keys)} in all)" if len(keys) > limit else "")


def init_state_path(init: Path) -> Path:
    """``--init`` may be a checkpoint folder or a bare state-dict file."""
    return init / MODEL_FILE if init.is_dir() else init


def checkpoint_class_map(init: Path | None) -> tuple[bool, ClassMap | None]:
    """(config found, the class map or None) of an init checkpoint, for continue_training."""
    if init is None or not init.is_dir() or not (init / CONFIG_FILE).is_file():
        return False, None
    try:
        return True, read_card(init).classes
    except UnetkitError:
        return True, None


def head_substrings(model: nn.Module) -> tuple[str, ...]:
    """Names of the classification head(s): ``model.head_names`` if the model declares them, ``last_conv``
    for UNet V2, otherwise every conv whose output channels equal the number of classes."""
    declared = getattr(model, "head_names", None)
    if declared:
        return tuple(declared)
    names = [n for n, _ in model.named_modules()]
    if "last_conv" in names:
        return ("last_conv",)
    num_classes = getattr(model, "num_classes", None)
    heads = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.modules.conv._ConvNd) and m.out_channels == num_classes and n
    ]
    return tuple(f"{n}." for n in heads) or ("last_conv",)


def transfer_learning(model: nn.Module, init: Path) -> None:
    """Copy every tensor except the head; shape mismatches are an error naming the parameters."""
    path = init_state_path(init)
    report = transfer_weights(model, load_state_file(path), skip_substrings=head_substrings(model))
    if report.shape_mismatches:
        names = "; ".join(f"{k} (file {s} vs model {m})" for k, s, m in report.shape_mismatches[:10])
        raise ConfigError(f"transfer_learning: parameter shapes do not match the model: {names}", file=path)
    total = len(model.state_dict())
    log.info(
        "transfer_learning from %s: copied %d of %d tensors (head skipped: %d, ignored: %d)",
        path, len(report.copied), total, len(report.skipped), len(report.unexpected),
    )  # fmt: skip
    if not report.copied:
        log.warning(
            "transfer_learning: no tensor of %s matches the model; weights keep their initialisation", path
        )


def continue_training(model: nn.Module, init: Path) -> None:
    """Strict load: the snapshot's keys and the model's must match exactly."""
    path = init_state_path(init)
    state = load_state_file(path)
    mapped = normalize_state_dict(state, model)
    own = model.state_dict()
    extra = [k for k in mapped if k not in own]
    missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")]
    if extra:
        raise ConfigError(
            f"Parameters found in the snapshot file, but not in the model: {_names(extra)}", file=path
        )
    if missing:
        raise ConfigError(f"Model parameters missing from the snapshot file: {_names(missing)}", file=path)
    try:
        load_state_dict_flexible(model, state, strict=True)
    except UnetkitError as exc:
        raise ConfigError(f"continue_training: {exc.message}", file=path) from None
    log.info("continue_training: loaded all weights from %s", path)
