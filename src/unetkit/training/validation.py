"""Validation pass: the original batch-weighted loss/accuracy/dice plus per-class IoU and Dice, reduced over
DDP processes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from unetkit.metrics import ConfusionMatrix
from unetkit.training import ddp
from unetkit.training.data import CorruptionTracker
from unetkit.training.losses import batch_metrics, class_argmax


@torch.no_grad()
def run_validation(
    model: nn.Module,
    loader,
    forward_loss: Callable,
    *,
    device: torch.device,
    num_classes: int,
    neutral: int,
    binary: bool,
    class_title_to_idx: dict[str, int],
    tracker: CorruptionTracker,
    eval_mode: bool = True,
) -> dict:
    """Each batch value is weighted by its size and divided by the number of validation samples, as the
    original did (docs/original-behaviour.md, "Losses and metrics")."""
    model.train(not eval_mode)
    sums = torch.zeros(4, dtype=torch.float64)
    cm = ConfusionMatrix(num_classes, ignore_index=neutral)
    for batch in loader:
        tracker.update(batch["failed"])
        x = batch["image"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True)
        loss, logits = forward_loss(x, y)
        m = batch_metrics(logits.float(), y, neutral, binary)
        n = x.shape[0]
        dice = m["dice"].item() if binary else 0.0
        sums += torch.tensor([loss.item() * n, m["accuracy"].item() * n, dice * n, n], dtype=torch.float64)
        cm.update(class_argmax(logits).cpu().numpy(), y.cpu().numpy())
    model.train()
    flat = torch.cat([sums, torch.from_numpy(cm.matrix.astype(np.float64)).flatten()])
    red = ddp.all_reduce_sum(flat.to(device)).cpu()
    count = max(1.0, float(red[3]))
    cm.matrix = red[4:].round().long().numpy().reshape(num_classes, num_classes)
    metrics = {"loss": float(red[0]) / count, "accuracy": float(red[1]) / count}
    if binary:
        metrics["dice"] = float(red[2]) / count
    per = cm.per_class()
    for title, idx in sorted(class_title_to_idx.items(), key=lambda kv: kv[1]):
        metrics[f"iou/{title}"] = float(per["iou"][idx])
        metrics[f"dice/{title}"] = float(per["dice"][idx])
    present = per["iou"][np.isfinite(per["iou"])]
    metrics["miou"] = float(present.mean()) if present.size else float("nan")
    return metrics
