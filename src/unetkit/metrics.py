"""Segmentation metrics shared by training (validation) and `unetkit evaluate`: the confusion matrix, and score
histograms for ROC-AUC and threshold sweeps in bounded memory."""

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


# Score keys: float32 scores in [0, 1] map monotonically onto integers — bits(s) up to 0.5, then 2·bits(0.5) −
# bits(1 − s) (1 − s is exact in float32 there) — so both tails keep float32's relative precision. A bin is
# 2**SCORE_KEY_SHIFT consecutive keys: about 2**11 bins per power of two of s (or of 1 − s), 1.03 M bins in all.
SCORE_KEY_SHIFT = 11
_HALF_BITS = int(np.float32(0.5).view(np.uint32))
SCORE_BINS = ((2 * _HALF_BITS) >> SCORE_KEY_SHIFT) + 1


def score_bins(scores: np.ndarray) -> np.ndarray:
    """Bin index (0 … SCORE_BINS−1, monotone in the score) of each score, clipped to [0, 1]."""
    s = np.clip(np.asarray(scores, dtype=np.float32).reshape(-1), 0.0, 1.0)
    s = np.nan_to_num(s, nan=0.0)
    high = s > 0.5
    key = s.view(np.uint32).astype(np.int64)
    key[high] = 2 * _HALF_BITS - (np.float32(1.0) - s[high]).view(np.uint32).astype(np.int64)
    return key >> SCORE_KEY_SHIFT


def bin_lower_edges() -> np.ndarray:
    """The smallest score of each bin: a score is in bin ≥ k exactly when it is ≥ edge k (edges within 1e-16 of
    1 print as 1.0 in float64)."""
    key = np.arange(SCORE_BINS, dtype=np.int64) << SCORE_KEY_SHIFT
    low = key <= _HALF_BITS
    out = np.empty(SCORE_BINS, dtype=np.float64)
    out[low] = key[low].astype(np.uint32).view(np.float32)
    out[~low] = 1.0 - (2 * _HALF_BITS - key[~low]).astype(np.uint32).view(np.float32).astype(np.float64)
    return out


class ScoreHistogram:
    """Histograms of the foreground scores of positive and negative pixels, in bounded memory (2 × SCORE_BINS
    counters, 16 MB). They give the ROC-AUC and the confusion matrix of every threshold. Only scores closer than
    about 2.4e-4·min(s, 1 − s) share a bin and count as ties: on real score maps the AUC is within 1e-5 of the
    exact rank statistic (tests: within 1e-4 on uniform, saturated and 0.49–0.51 scores)."""

    def __init__(self):
        self.pos = np.zeros(SCORE_BINS, dtype=np.int64)
        self.neg = np.zeros(SCORE_BINS, dtype=np.int64)

    def update(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """Add pixels: ``scores`` in [0, 1] and boolean ``labels`` (True = foreground), any equal shapes."""
        bins = score_bins(scores)
        labels = np.asarray(labels).reshape(-1).astype(bool)
        self.pos += np.bincount(bins[labels], minlength=SCORE_BINS)
        self.neg += np.bincount(bins[~labels], minlength=SCORE_BINS)

    def merge(self, other: ScoreHistogram) -> None:
        self.pos += other.pos
        self.neg += other.neg

    def roc_auc(self) -> float:
        """Area under the ROC curve (scores in one bin count as ties); NaN when one class is absent."""
        n_pos, n_neg = int(self.pos.sum()), int(self.neg.sum())
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        pos_above = n_pos - np.cumsum(self.pos)
        return float(((pos_above + 0.5 * self.pos) * self.neg).sum() / (n_pos * n_neg))

    def threshold_counts(self) -> dict[str, np.ndarray]:
        """For every bin edge ``t`` (``"threshold"``): tp, fp, fn, tn of "foreground where score ≥ t"."""
        tp = np.cumsum(self.pos[::-1])[::-1]
        fp = np.cumsum(self.neg[::-1])[::-1]
        return {
            "threshold": bin_lower_edges(),
            "tp": tp,
            "fp": fp,
            "fn": self.pos.sum() - tp,
            "tn": self.neg.sum() - fp,
        }

    def best_threshold(self, metric: str = "dice") -> dict:
        """The threshold maximising ``metric`` ("dice" = F1, or "iou"): the middle of the best run of thresholds,
        with that run's range and the metrics there (None when no pixel was added)."""
        c = self.threshold_counts()
        tp, fp, fn = (c[k].astype(np.float64) for k in ("tp", "fp", "fn"))
        with np.errstate(divide="ignore", invalid="ignore"):
            values = {"dice": 2 * tp / (2 * tp + fp + fn), "iou": tp / (tp + fp + fn)}
        if metric not in values:
            raise ValueError(f"metric must be one of {', '.join(values)}")
        v = np.nan_to_num(values[metric], nan=-1.0)
        if not (self.pos.sum() + self.neg.sum()) or v.max() < 0:
            return {"metric": metric, "threshold": None}
        first = int(np.argmax(v))
        below = np.flatnonzero(v[first:] < v[first])
        last = first + (int(below[0]) - 1 if below.size else v.size - 1 - first)
        edges, k = c["threshold"], first
        with np.errstate(divide="ignore", invalid="ignore"):
            precision, recall = tp[k] / (tp[k] + fp[k]), tp[k] / (tp[k] + fn[k])
        return {
            "metric": metric,
            "threshold": float((edges[first] + edges[last]) / 2),
            "range": [float(edges[first]), float(edges[last])],
            "dice": float(values["dice"][k]),
            "iou": float(values["iou"][k]),
            "precision": float(precision) if np.isfinite(precision) else None,
            "recall": float(recall) if np.isfinite(recall) else None,
        }
