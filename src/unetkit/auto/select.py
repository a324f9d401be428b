"""Choices made on out-of-fold predictions: threshold, clean-up (small components or all but the largest) and
flip-TTA.

Every option is scored by the pooled Dice over the foreground classes of all out-of-fold images (neutral pixels
excluded); an option replaces the default only when it scores higher, and its gain is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unetkit.inference.postprocess import clean_mask, decide
from unetkit.inference_config import ClassCleanup


@dataclass
class OutOfFold:
    """One image's ground truth (class indices; ``neutral`` = ignored) and its probabilities H×W×K."""

    name: str
    gt: np.ndarray
    probs: np.ndarray
    probs_tta: np.ndarray | None = None
    multilabel: bool = False  # then gt holds one bit per class (bit K = neutral) and probs are sigmoids


@dataclass
class Choices:
    threshold: float | dict[int, float] | None = None  # binary: one value; multi-label: class index → value
    min_sizes: dict[int, int] = field(default_factory=dict)  # class index → smallest kept component
    # classes of which only the largest component is kept
    keep_largest: list[int] = field(default_factory=list)
    tta: bool = False
    dice: float = float("nan")  # pooled out-of-fold Dice with these choices
    steps: list[dict] = field(default_factory=list)  # each choice: option, value, Dice before/after, gain


def cleanup_rules(min_sizes: dict[int, int] | None, keep_largest=()) -> dict[int, ClassCleanup]:
    """The per-class clean-up of the choices, as inference applies it."""
    classes = {c for c, s in (min_sizes or {}).items() if s > 0} | set(keep_largest)
    return {
        c: ClassCleanup(min_size=(min_sizes or {}).get(c, 0), keep_largest=1 if c in keep_largest else None)
        for c in sorted(classes)
    }


def pooled_dice(
    oof: list[OutOfFold], neutral: int, threshold=None, min_sizes=None, tta=False, keep_largest=()
) -> float:
    """Mean over foreground classes of the Dice pooled over all images."""
    k = oof[0].probs.shape[2]
    inter = np.zeros(k)
    total = np.zeros(k)
    rules = cleanup_rules(min_sizes, keep_largest)
    for item in oof:
        probs = item.probs_tta if tta and item.probs_tta is not None else item.probs
        pred = clean_mask(decide(probs, threshold), rules) if rules else decide(probs, threshold)
        keep = item.gt != neutral
        gt, pr = item.gt[keep], pred[keep]
        for c in range(1, k):
            g, p = gt == c, pr == c
            inter[c] += np.count_nonzero(g & p)
            total[c] += np.count_nonzero(g) + np.count_nonzero(p)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = 2 * inter[1:] / total[1:]
    dice = dice[total[1:] > 0]
    return float(dice.mean()) if dice.size else float("nan")


def choose(
    oof: list[OutOfFold],
    neutral: int,
    thresholds: list[float],
    min_sizes: list[int],
    try_tta: bool,
    try_keep_largest: bool = True,
) -> Choices:
    """Greedy, in this order: TTA on/off, the threshold (binary), then per class the best clean-up: removing
    components under one of ``min_sizes`` pixels, or keeping only the largest component."""
    out = Choices()
    best = pooled_dice(oof, neutral)
    out.dice = best

    def record(option: str, value, score: float) -> bool:
        gain = score - out.dice
        out.steps.append({"option": option, "value": value, "dice_before": out.dice, "dice_after": max(score, out.dice),
                          "gain": max(gain, 0.0), "taken": gain > 0})  # fmt: skip
        if gain > 0:
            out.dice = score
            return True
        return False

    if try_tta and all(o.probs_tta is not None for o in oof):
        out.tta = record("tta", True, pooled_dice(oof, neutral, tta=True))
    if oof[0].probs.shape[2] == 2 and thresholds:
        scores = {t: pooled_dice(oof, neutral, threshold=t, tta=out.tta) for t in thresholds}
        t_best = max(scores, key=lambda t: (scores[t], -abs(t - 0.5)))
        if record("threshold", t_best, scores[t_best]):
            out.threshold = t_best
    for c in range(1, oof[0].probs.shape[2]):
        # candidates, mildest first: a tie goes to the mildest clean-up
        options = [("min_size", s) for s in sorted(min_sizes) if s > 0]
        options += [("keep_largest", 1)] if try_keep_largest else []
        scores = []
        for name, value in options:
            sizes = {**out.min_sizes, c: value} if name == "min_size" else out.min_sizes
            largest = [*out.keep_largest, c] if name == "keep_largest" else out.keep_largest
            scores.append(pooled_dice(oof, neutral, out.threshold, sizes, out.tta, largest))
        if scores:
            best = int(np.argmax(scores))  # the first of equal scores
            name, value = options[best]
            if record(f"{name}[{c}]", value, scores[best]):
                if name == "min_size":
                    out.min_sizes[c] = value
                else:
                    out.keep_largest.append(c)
    return out


def multilabel_dice(oof: list[OutOfFold], c: int, threshold: float, tta: bool = False) -> float:
    """Class ``c``'s Dice pooled over all images (multi-label: bit c of the ground truth, sigmoid ≥ threshold)."""
    k = oof[0].probs.shape[2]
    inter = total = 0
    for item in oof:
        probs = item.probs_tta if tta and item.probs_tta is not None else item.probs
        keep = ((item.gt >> k) & 1) == 0
        g = (((item.gt >> c) & 1) == 1) & keep
        p = (probs[:, :, c] >= threshold) & keep
        inter += np.count_nonzero(g & p)
        total += np.count_nonzero(g) + np.count_nonzero(p)
    return 2 * inter / total if total else float("nan")


def choose_multilabel(oof: list[OutOfFold], thresholds: list[float], try_tta: bool) -> Choices:
    """Multi-label: TTA on/off by the mean class Dice at 0.5, then each class's threshold on its own Dice."""
    k = oof[0].probs.shape[2]

    def mean_dice(ts: dict[int, float], tta: bool) -> float:
        values = [multilabel_dice(oof, c, ts.get(c, 0.5), tta) for c in range(k)]
        values = [v for v in values if np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    out = Choices(threshold={})
    out.dice = mean_dice({}, False)
    if try_tta and all(o.probs_tta is not None for o in oof):
        score = mean_dice({}, True)
        out.steps.append({"option": "tta", "value": True, "dice_before": out.dice, "dice_after": max(score, out.dice),
                          "gain": max(score - out.dice, 0.0), "taken": score > out.dice})  # fmt: skip
        if score > out.dice:
            out.tta, out.dice = True, score
    for c in range(k):
        scores = {t: multilabel_dice(oof, c, t, out.tta) for t in thresholds}
        best = max(scores, key=lambda t: (np.nan_to_num(scores[t], nan=-1.0), -abs(t - 0.5)))
        before = mean_dice(out.threshold, out.tta)
        after = mean_dice({**out.threshold, c: best}, out.tta)
        taken = after > before
        out.steps.append({"option": f"threshold[{c}]", "value": best, "dice_before": before,
                          "dice_after": max(after, before), "gain": max(after - before, 0.0), "taken": taken})  # fmt: skip
        if taken:
            out.threshold[c] = best
            out.dice = after
    return out
