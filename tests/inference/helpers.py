"""Helpers for inference tests: tiny `unet` checkpoints with random or hand-set head weights."""

from __future__ import annotations

from pathlib import Path

import torch

from unetkit.models import create_model
from unetkit.models.card import ClassMap, ModelCard, Preprocessing
from unetkit.models.checkpoint import save_checkpoint

OUT_CLASSES = [
    {"title": "vessel", "shape": "bitmap", "color": "#FF0000", "geometry_config": {}, "hotkey": ""},
    {"title": "bg", "shape": "bitmap", "color": "#222222", "geometry_config": {}, "hotkey": ""},
]
CLASS_MAP = {"bg": 0, "vessel": 1}
TINY = {"base_channels": 4, "depth": 2}


def make_checkpoint(
    path: Path,
    *,
    input_size=(64, 64),
    bias: tuple[float, ...] | None = None,
    seed: int = 0,
    out_classes=OUT_CLASSES,
    class_map=CLASS_MAP,
    options=TINY,
) -> Path:
    """Save a tiny U-Net checkpoint. ``bias``: zero the head weights and set its bias (constant prediction)."""
    torch.manual_seed(seed)
    num_classes = max(class_map.values()) + 1
    model = create_model("unet", num_classes, **options).eval()
    if bias is not None:
        with torch.no_grad():
            model.outc.conv.weight.zero_()
            model.outc.conv.bias.copy_(torch.tensor(bias))
    settings = {"input_size": {"width": input_size[0], "height": input_size[1]}}
    card = ModelCard(
        model="unet", model_options=dict(options), settings=settings,
        classes=ClassMap(out_classes=out_classes, class_title_to_idx=class_map),
        preprocessing=Preprocessing(input_size=tuple(input_size)),
    )  # fmt: skip
    return save_checkpoint(path, model, card)
