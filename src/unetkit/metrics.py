"""Confusion-matrix segmentation metrics shared by training (validation) and `unetkit evaluate`."""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("iou", "dice", "precision", "recall", "specificity", "accuracy")


class ConfusionMatrix:
    """Accumulates an n×n pixel confusion matrix (rows = ground truth, columns = prediction).

    Pixels whose target equals ``ignore_index`` (neutral) are excluded.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        pred = np.asarray(pred).reshape(-1).astype(np.int64)
        target = np.asarray(target).reshape(-1).astype(np.int64)
        keep = (target >= 0) & (target < self.num_classes)
        if self.ignore_index is not None:
            keep &= target != self.ignore_index
        pred, target = pred[keep], target[keep]
        if pred.size and (pred.min() < 0 or pred.max() >= self.num_classes):
            raise ValueError("prediction holds a class index outside [0, num_classes)")
        self.matrix += np.bincount(target * self.num_classes + pred, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    def per_class(self) -> dict[str, np.ndarray]:
        """Per-class metrics as arrays of length num_classes (NaN where undefined, e.g. class absent)."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        fp = m.sum(axis=0) - tp
        fn = m.sum(axis=1) - tp
        total = m.sum()
        tn = total - tp - fp - fn
        with np.errstate(divide="ignore", invalid="ignore"):
            return {
                "iou": tp / (tp + fp + fn),
                "dice": 2 * tp / (2 * tp + fp + fn),
                "precision": tp / (tp + fp),
                "recall": tp / (tp + fn),
                "specificity": tn / (tn + fp),
                "accuracy": (tp + tn) / total if total else np.full_like(tp, np.nan),
            }

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")


def binary_roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC from foreground scores and 0/1 labels (rank statistic, ties averaged). NaN if one class only."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [scores.size]))
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
