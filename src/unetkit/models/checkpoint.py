"""Checkpoint folders: ``model.pt`` (plain state dict) + ``config.json`` (the model card, see models/card.py).

unet_v2 weights are stored with the original's ``module.`` key prefix so that Supervisely can read them and
original checkpoints load here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from unetkit import atomic
from unetkit.errors import UnetkitError
from unetkit.models.card import CONFIG_FILE, ModelCard, check_class_count
from unetkit.models.checkpoint_dir import read_card, resolve_checkpoint_dir  # noqa: F401 - re-exported
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

MODEL_FILE = "model.pt"
PREFIXED_MODELS = ("unet_v2",)  # saved with the DataParallel "module." prefix, like the original


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    card: ModelCard


def save_checkpoint(dir, model: nn.Module, card: ModelCard) -> Path:
    """Write ``dir/model.pt`` + ``dir/config.json`` (the card) atomically and return ``dir``.

    A new folder is written under a temporary name and renamed; an existing one gets each file replaced.
    """
    dir = Path(dir)
    net = unwrap_model(model)
    check_class_count(card, getattr(net, "num_classes", None))
    prefix = "module." if card.model in PREFIXED_MODELS else ""
    state = {prefix + strip_wrapper_prefixes(k): v.detach().cpu() for k, v in net.state_dict().items()}
    config_bytes = card.to_json_bytes()
    if dir.exists() and not dir.is_dir():
        raise UnetkitError("cannot write a checkpoint: the path exists and is not a folder", file=dir)

    def write(folder: Path) -> None:
        atomic.write_file(folder / MODEL_FILE, lambda fh: torch.save(state, fh), fsync=True)
        atomic.write_bytes(folder / CONFIG_FILE, config_bytes, fsync=True)

    if dir.exists():
        write(dir)
    else:
        with atomic.write_folder(dir) as staging:
            write(staging)
    return dir


def load_checkpoint(dir, map_location="cpu") -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint folder, load its weights strictly, and return it in eval mode."""
    card = read_card(dir)
    try:
        model = create_model(card.model, card.num_classes, in_channels=card.in_channels, **card.model_options)
    except UnetkitError as exc:
        raise UnetkitError(f"cannot rebuild the model: {exc}", file=card.path / CONFIG_FILE) from None
    weights = card.path / MODEL_FILE
    state = load_state_file(weights)
    try:
        load_state_dict_flexible(model, state, strict=True)
    except UnetkitError as exc:
        raise UnetkitError(exc.message, file=weights) from None
    model.to(map_location)
    model.eval()
    return LoadedCheckpoint(model=model, card=card)
