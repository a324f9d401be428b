"""Fixtures for inference tests: tiny `unet` checkpoints with random or hand-set head weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unetkit.models import create_model
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
    return save_checkpoint(
        path, model, model_name="unet", model_options=dict(options), settings=settings,
        out_classes=out_classes, class_title_to_idx=class_map,
    )  # fmt: skip


@pytest.fixture(scope="session")
def random_ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "random", seed=1)


@pytest.fixture(scope="session")
def vessel_ckpt(tmp_path_factory) -> Path:
    """Predicts `vessel` everywhere (head bias only)."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "vessel", bias=(0.0, 3.0))


@pytest.fixture(scope="session")
def chase_images(chasedb1_dir) -> list[np.ndarray]:
    """Three CHASE DB1 images downscaled in memory to 100×96 (W×H)."""
    import cv2

    from unetkit.project import read_image

    paths = sorted(chasedb1_dir.glob("Image_0*.jpg"))[:3]
    return [cv2.resize(read_image(p), (100, 96), interpolation=cv2.INTER_AREA) for p in paths]
