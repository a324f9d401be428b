"""Fixtures for inference tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from .helpers import make_checkpoint


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


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest single-threaded; avoids oversubscription under `pytest -n 2`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
