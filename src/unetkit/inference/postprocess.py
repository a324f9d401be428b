"""Threshold and per-class clean-up of predicted masks (unetkit extensions of the inference config).

``threshold`` (binary models): foreground where its probability ≥ threshold, instead of the argmax. Clean-up per
class, in this order: remove connected components smaller than ``min_size`` pixels, keep the ``keep_largest``
largest components, fill holes. Components are 8-connected (OpenCV ``connectedComponentsWithStats``); a hole is
a region of other pixels that does not touch the image border (4-connected, scipy ``binary_fill_holes``).
Removed pixels become background (class index 0); filled holes become the class.

Multi-label models (:mod:`unetkit.inference.labelsets`): ``threshold`` is one number or ``{class: number}``
(default 0.5 each); each class is decided and cleaned on its own, removed pixels just lose that class.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from unetkit.errors import ConfigError
from unetkit.inference.labelsets import class_region, class_thresholds, decide_labelsets
from unetkit.inference_config import ClassCleanup


def is_active(rule: ClassCleanup) -> bool:
    return rule.min_size > 0 or rule.keep_largest is not None or rule.fill_holes


def clean_region(region: np.ndarray, rule: ClassCleanup) -> np.ndarray:
    """A boolean mask after ``rule`` (a new array; ``region`` is left as it is)."""
    region = np.asarray(region, dtype=bool)
    if (rule.min_size > 0 or rule.keep_largest is not None) and region.any():
        _, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = areas >= rule.min_size
        if rule.keep_largest is not None and keep.sum() > rule.keep_largest:
            order = np.argsort(-areas, kind="stable")  # ties: the earlier component (raster order) wins
            ranked = order[keep[order]][: rule.keep_largest]
            keep = np.zeros_like(keep)
            keep[ranked] = True
        region = np.concatenate(([False], keep))[labels]
    if rule.fill_holes:
        region = ndimage.binary_fill_holes(region)
    return region


def argmax(probs: np.ndarray) -> np.ndarray:
    """H×W×K → H×W class indices (first maximum wins, as numpy/the original)."""
    k = probs.shape[2]
    return probs.argmax(axis=2).astype(np.uint8 if k <= 256 else np.uint16)


def decide(probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """H×W×K probabilities → class-index mask: the argmax, or for ``threshold`` (K = 2) class 1 where its
    probability ≥ threshold."""
    if threshold is None:
        return argmax(probs)
    if probs.shape[2] != 2:
        raise ValueError("a threshold needs a binary model (2 classes)")
    return (probs[:, :, 1] >= threshold).astype(np.uint8)


def clean_mask(mask: np.ndarray, rules: dict[int, ClassCleanup]) -> np.ndarray:
    """Apply each class index's rule to a class-index mask, in class index order (returns a new mask)."""
    out = np.array(mask, copy=True)
    for index in sorted(rules):
        rule = rules[index]
        if not is_active(rule):
            continue
        region = out == index
        cleaned = clean_region(region, rule)
        out[region & ~cleaned] = 0
        out[cleaned & ~region] = index
    return out


def clean_labelsets(mask: np.ndarray, rules: dict[int, ClassCleanup]) -> np.ndarray:
    """Apply each class index's rule to its bit of a packed multi-label mask (returns a new mask)."""
    out = np.array(mask, copy=True)
    for index, rule in rules.items():
        if is_active(rule):
            bit = out.dtype.type(1) << out.dtype.type(index)
            cleaned = clean_region(class_region(out, index), rule)
            out = np.where(cleaned, out | bit, out & ~bit)
    return out


class MaskPostprocessor:
    """A mode's ``threshold`` and ``postprocess`` settings checked against the model's classes. A multi-label
    model's masks are packed (:mod:`unetkit.inference.labelsets`) and ``thresholds`` holds one value per class."""

    def __init__(self, mode, classes, num_classes: int, *, multilabel: bool = False):
        self.threshold = mode.threshold
        self.multilabel = multilabel
        self.thresholds = class_thresholds(mode.threshold, classes) if multilabel else None
        if isinstance(self.threshold, dict) and not multilabel:
            raise ConfigError(
                "a threshold per class needs a multi-label model; give one number (binary models)",
                json_path="$.mode.threshold",
            )
        if self.threshold is not None and num_classes != 2 and not multilabel:
            raise ConfigError(
                f"`threshold` needs a binary model (background + one class); this model has {num_classes} "
                "classes: leave it out to use the argmax",
                json_path="$.mode.threshold",
            )
        index = {mc.title: mc.index for mc in classes}
        unknown = [t for t in mode.postprocess if t not in index]
        if unknown:
            raise ConfigError(
                f"no model class {unknown[0]!r}; the model's classes are {', '.join(index)}",
                json_path=f"$.mode.postprocess.{unknown[0]}",
            )
        self.rules = {index[t]: rule for t, rule in mode.postprocess.items() if is_active(rule)}

    def mask(self, probs: np.ndarray) -> np.ndarray:
        """Class-index mask of H×W×K probabilities: threshold or argmax, then the clean-up (multi-label: the
        packed mask of the per-class thresholds)."""
        if self.multilabel:
            return self.clean(decide_labelsets(probs, self.thresholds))
        return self.clean(decide(probs, self.threshold))

    def clean(self, mask: np.ndarray) -> np.ndarray:
        if not self.rules:
            return mask
        return clean_labelsets(mask, self.rules) if self.multilabel else clean_mask(mask, self.rules)
