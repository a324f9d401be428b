"""Fixtures for inference tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


@pytest.fixture(scope="session")
def chase_project(tmp_path_factory, chasedb1_dir) -> Path:
    """A small project from 3 CHASE DB1 images (100×96) with their vessel masks as `vessel` bitmaps and one
    `box` rectangle per image."""
    import cv2

    from unetkit.project import (
        Annotation,
        Bitmap,
        Label,
        ObjClass,
        ProjectMeta,
        ProjectWriter,
        Rectangle,
        read_image,
    )

    meta = ProjectMeta([ObjClass("vessel", "bitmap", "#FF0000"), ObjClass("box", "rectangle", "#00FF00")])
    out = tmp_path_factory.mktemp("proj") / "chase"
    writer = ProjectWriter(out, meta)
    for i, path in enumerate(sorted(chasedb1_dir.glob("Image_0*.jpg"))[:3]):
        image = cv2.resize(read_image(path), (100, 96), interpolation=cv2.INTER_AREA)
        gt = cv2.imread(str(path.with_name(path.stem + "_1stHO.png")), cv2.IMREAD_GRAYSCALE)
        gt = cv2.resize(gt, (100, 96), interpolation=cv2.INTER_NEAREST) > 0
        labels = [Label("vessel", Bitmap.from_full_mask(gt)), Label("box", Rectangle(20 + i, 10, 39 + i, 29))]
        writer.add_item("ds0", path.stem + ".png", image, Annotation(96, 100, labels))
    return out
