"""Validation pass: the original batch-weighted loss/accuracy/dice plus per-class IoU and Dice, reduced over
DDP processes; and the preview grid of the first validation samples shown in TensorBoard."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from unetkit.metrics import ConfusionMatrix
from unetkit.models.card import ClassMap
from unetkit.project.meta import color_to_rgb
from unetkit.training import ddp
from unetkit.training.data import CorruptionTracker
from unetkit.training.losses import batch_metrics, class_argmax
from unetkit.training.multilabel import class_counts, pack_predictions


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
    preview: ValidationPreview | None = None,
    multilabel: bool = False,
) -> dict:
    """Each batch value is weighted by its size and divided by the number of validation samples, as the
    original did (docs/original-behaviour.md, "Losses and metrics"). ``preview`` collects its first samples.
    ``multilabel``: packed targets; per-class IoU and Dice of the sigmoid decisions at 0.5."""
    model.train(not eval_mode)
    if preview is not None:
        preview.reset()
    sums = torch.zeros(4, dtype=torch.float64)
    cm = ConfusionMatrix(num_classes, ignore_index=neutral)
    counts = torch.zeros(num_classes if multilabel else 0, 3, dtype=torch.float64)  # multi-label tp, fp, fn
    for batch in loader:
        tracker.update(batch["failed"])
        x = batch["image"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True)
        loss, logits = forward_loss(x, y)
        m = batch_metrics(logits.float(), y, neutral, binary, multilabel=multilabel)
        n = x.shape[0]
        dice = m["dice"].item() if binary else 0.0
        sums += torch.tensor([loss.item() * n, m["accuracy"].item() * n, dice * n, n], dtype=torch.float64)
        if multilabel:
            pred = pack_predictions(logits)
            counts += class_counts(logits.float(), y)
        else:
            pred = class_argmax(logits)
            cm.update(pred.cpu().numpy(), y.cpu().numpy())
        if preview is not None:
            preview.add(x, y, pred)
    model.train()
    flat = torch.cat([sums, torch.from_numpy(cm.matrix.astype(np.float64)).flatten(), counts.flatten()])
    red = ddp.all_reduce_sum(flat.to(device)).cpu()
    count = max(1.0, float(red[3]))
    end = 4 + num_classes * num_classes
    cm.matrix = red[4:end].round().long().numpy().reshape(num_classes, num_classes)
    metrics = {"loss": float(red[0]) / count, "accuracy": float(red[1]) / count}
    if binary:
        metrics["dice"] = float(red[2]) / count
    per = cm.per_class() if not multilabel else _multilabel_scores(red[end:].numpy().reshape(num_classes, 3))
    for title, idx in sorted(class_title_to_idx.items(), key=lambda kv: kv[1]):
        metrics[f"iou/{title}"] = float(per["iou"][idx])
        metrics[f"dice/{title}"] = float(per["dice"][idx])
    present = per["iou"][np.isfinite(per["iou"])]
    metrics["miou"] = float(present.mean()) if present.size else float("nan")
    return metrics


def _multilabel_scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class IoU and Dice from K×3 (tp, fp, fn) counts (NaN where a class is absent and not predicted)."""
    tp, fp, fn = counts.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"iou": tp / (tp + fp + fn), "dice": 2 * tp / (2 * tp + fp + fn)}


PREVIEW_IMAGES = 8
NEUTRAL_RGB = (128, 128, 128)


def display_image(x: np.ndarray) -> np.ndarray:
    """A normalised C×H×W input as an H×W×3 uint8 picture: the first three channels (one channel as grey), each
    stretched between its 1st and 99th percentile, so any normalisation, bit depth or channel count shows."""
    chans = x[:3] if x.shape[0] >= 3 else x[:1].repeat(3, axis=0)
    low = np.percentile(chans, 1, axis=(1, 2), keepdims=True)
    high = np.percentile(chans, 99, axis=(1, 2), keepdims=True)
    scaled = (chans - low) / np.maximum(high - low, 1e-6)
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)


class ValidationPreview:
    """The first ``count`` validation samples (the validation order is fixed, so the same images every time) as one
    picture: a row per sample with the input, the ground truth and the prediction (class colours blended over the
    input; background left as it is, neutral pixels grey)."""

    def __init__(
        self,
        palette: dict[int, tuple[int, int, int]],
        neutral: int,
        count: int = PREVIEW_IMAGES,
        *,
        multilabel: bool = False,
    ):
        self.count, self.neutral, self.multilabel = count, neutral, multilabel
        size = max([*palette, neutral]) + 1
        self.colors = np.zeros((size, 3), np.float32)
        self.painted = np.zeros(size, bool)
        for index, rgb in palette.items():
            self.colors[index], self.painted[index] = rgb, index != 0
        self.colors[neutral], self.painted[neutral] = NEUTRAL_RGB, True
        self.rows: list[np.ndarray] = []

    @classmethod
    def for_classes(cls, classes: ClassMap, count: int = PREVIEW_IMAGES) -> ValidationPreview:
        palette = {mc.index: color_to_rgb(mc.color) for mc in classes.classes}
        return cls(palette, classes.neutral_index, count, multilabel=classes.multilabel)

    def reset(self) -> None:
        self.rows = []

    def overlay(self, picture: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if self.multilabel:  # packed labels (bit k = class k): the classes at a pixel are blended in turn
            out = picture.astype(np.float32)
            for index in range(self.neutral + 1):
                hit = ((labels >> index) & 1).astype(bool)
                out[hit] = out[hit] * np.float32(0.45) + self.colors[index] * np.float32(0.55)
            return out.round().astype(np.uint8)
        labels = np.clip(labels, 0, len(self.colors) - 1)
        alpha = self.painted[labels][:, :, None] * np.float32(0.55)
        return (picture * (1 - alpha) + self.colors[labels] * alpha).round().astype(np.uint8)

    def add(self, images: torch.Tensor, targets: torch.Tensor, preds: torch.Tensor) -> None:
        """Keep samples of a batch (N×C×H×W inputs, N×H×W targets and predicted classes) until ``count``."""
        take = self.count - len(self.rows)
        if take <= 0:
            return
        x = images[:take].detach().float().cpu().numpy()
        y, p = targets[:take].cpu().numpy(), preds[:take].cpu().numpy()
        for xi, yi, pi in zip(x, y, p):
            picture = display_image(xi)
            self.rows.append(
                np.concatenate([picture, self.overlay(picture, yi), self.overlay(picture, pi)], 1)
            )

    def grid(self) -> np.ndarray | None:
        """H×W×3 uint8 (rows padded to the widest), or None before any sample."""
        if not self.rows:
            return None
        width = max(r.shape[1] for r in self.rows)
        return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in self.rows], 0)
