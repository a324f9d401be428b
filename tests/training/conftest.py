"""Tiny synthetic projects and configs for the training tests."""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.project import (
    Annotation,
    Bitmap,
    Label,
    ObjClass,
    ProjectMeta,
    ProjectWriter,
    Rectangle,
    Tag,
    TagMeta,
)

TINY_MODEL = {"model": "unet", "model_options": {"base_channels": 8, "depth": 2}}


def make_project(
    path,
    *,
    n_train=6,
    n_val=2,
    size=32,
    classes=("fg",),
    neutral=False,
    tags=("train", "val"),
    seed=0,
    empty_val=False,
):
    """Images with a bright disk of class classes[0] (and a rectangle of classes[1] when given)."""
    rng = np.random.default_rng(seed)
    colors = ["#FF0000", "#00FF00", "#0000FF"]
    obj = [ObjClass(c, "bitmap" if i == 0 else "rectangle", colors[i]) for i, c in enumerate(classes)]
    if neutral:
        obj.append(ObjClass("neutral", "rectangle", "#FFFFFF"))
    meta = ProjectMeta(classes=obj, tag_metas=[TagMeta(t) for t in dict.fromkeys(tags)])
    writer = ProjectWriter(path, meta)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n_train + n_val):
        img = (rng.random((size, size, 3)) * 60).astype(np.uint8)
        cy, cx = rng.integers(size // 4, 3 * size // 4, size=2)
        r = rng.integers(size // 8, size // 4)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img[disk] = np.clip(img[disk].astype(int) + [180, 120, 60], 0, 255).astype(np.uint8)
        labels = [Label(classes[0], Bitmap((0, 0), disk))]
        if len(classes) > 1:
            img[2 : size // 4, 2 : size // 4] = [40, 200, 220]
            labels.append(Label(classes[1], Rectangle(2, 2, size // 4 - 1, size // 4 - 1)))
        if neutral:
            labels.append(Label("neutral", Rectangle(size - 6, size - 6, size - 1, size - 1)))
        split = tags[0] if i < n_train else tags[1]
        if split == tags[1] and empty_val:
            labels = []
        ann = Annotation(size, size, labels, [Tag(split)])
        writer.add_item("ds0", f"img_{i:03d}.png", img, ann)
    writer.write_meta()
    return path


@pytest.fixture
def tiny_project(tmp_path):
    return make_project(tmp_path / "project")


def tiny_config(**over):
    cfg = {
        "lr": 0.01,
        "epochs": 2,
        "val_every": 1,
        "batch_size": {"train": 2, "val": 2},
        "input_size": {"width": 32, "height": 32},
        "gpu_devices": [0],
        "data_workers": {"train": 0, "val": 0},
        "unetkit": {**TINY_MODEL, "seed": 0},
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def read_jsonl(path):
    import json

    return [json.loads(line) for line in open(path, encoding="utf-8")]
