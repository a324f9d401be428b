"""Does a precision keep the accuracy? The same training (same seed, data order and initial weights) in several
``amp`` modes, compared by their validation metrics.

:data:`QUICK_RECIPE` is a short vessel-segmentation training (a small U-Net on random 64² crops, 600 steps) that
reaches a stable validation Dice in well under a minute on a CPU; with :func:`downscaled_project` of CHASE DB1 at
half size it is the project's bf16-versus-fp32 accuracy check (a test and ``benchmarks/numerics.py``).
"""

from __future__ import annotations

import copy
from pathlib import Path

from unetkit.models.numerics import resolve_numerics
from unetkit.training.config import TrainConfig, parse_config

QUICK_RECIPE = {
    "lr": 0.003, "epochs": 200, "val_every": 200,
    "batch_size": {"train": 8, "val": 16}, "input_size": {"width": 64, "height": 64},
    "data_workers": {"train": 0, "val": 0}, "dataset_tags": {"train": "train", "val": "val"},
    "unetkit": {
        "model": "unet", "model_options": {"base_channels": 8, "depth": 3}, "seed": 0,
        "patch_sampling": {"mode": "random_crop", "foreground_prob": 0.5}, "scheduler": {"name": "cosine"},
    },
}  # fmt: skip


def downscaled_project(images_dir, out_dir, *, scale: float = 0.5, split: float = 0.75, seed: int = 0):
    """A CHASE DB1-style folder (images and their ``*_1stHO.png`` masks side by side) resized by ``scale`` (images
    with INTER_AREA, masks nearest) and imported with a seeded train/val split."""
    import cv2

    from unetkit.project.imports import import_masks

    raw = Path(out_dir) / "raw"
    raw.mkdir(parents=True)
    for path in sorted(Path(images_dir).iterdir()):
        if path.suffix.lower() not in (".jpg", ".png"):
            continue
        is_mask = path.stem.endswith("_1stHO")
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if is_mask else cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resized = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if is_mask else cv2.INTER_AREA)
        cv2.imwrite(str(raw / f"{path.stem}.png"), resized)
    return import_masks(raw, raw, Path(out_dir) / "project", split=split, seed=seed)


def amp_parity(
    project_dir, config: dict | TrainConfig, out_dir, modes: tuple[str, ...] = ("off", "bf16")
) -> dict[str, dict]:
    """Train ``config`` once per ``amp`` mode into ``out_dir/<mode>``; returns ``{mode: {"numerics": label,
    "metrics": last validation metrics, "seconds": training time}}``. The config's seed is kept (0 when unset)."""
    from unetkit.training import train

    base = config.settings() if isinstance(config, TrainConfig) else copy.deepcopy(config)
    base.setdefault("unetkit", {})
    if base["unetkit"].get("seed") is None:
        base["unetkit"]["seed"] = 0
    results = {}
    for mode in modes:
        cfg = copy.deepcopy(base)
        cfg["unetkit"]["amp"] = mode
        parsed = parse_config(cfg, warn=False)
        result = train(project_dir, parsed, Path(out_dir) / mode, progress=False)
        train_records = [r for r in result.records if r["type"] in ("train", "val") and "time" in r]
        results[mode] = {
            "numerics": resolve_numerics(mode, _device(parsed)).label,
            "metrics": result.last_val_metrics,
            "seconds": train_records[-1]["time"] if train_records else None,
        }
    return results


def _device(cfg: TrainConfig) -> str:
    import torch

    return f"cuda:{cfg.gpu_devices[0]}" if torch.cuda.is_available() else "cpu"
