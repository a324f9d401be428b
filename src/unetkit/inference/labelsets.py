"""Multi-label masks: the classes present at a pixel as the bits of one unsigned integer (class k → bit k).

Multi-label models have one sigmoid channel per class; a class is present where its probability reaches its
threshold (default 0.5), independently of the others, so classes may overlap. Inference keeps such a mask packed
(an H×W ``uint8`` for up to 8 classes, ``uint16``/``uint32`` beyond) and writes one bitmap per class from it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from unetkit.errors import ConfigError

DEFAULT_THRESHOLD = 0.5


def labelset_dtype(num_classes: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if num_classes <= np.dtype(dtype).itemsize * 8:
            return np.dtype(dtype)
    raise ValueError(f"at most 64 multi-label classes, got {num_classes}")


def class_thresholds(threshold: float | Mapping[str, float] | None, classes) -> np.ndarray:
    """Per-class thresholds (float32, by class index) from a mode's ``threshold``: None (0.5 each), one number for
    every class, or ``{model class title: number}`` (classes left out keep 0.5). ``classes``: ModelClass list."""
    out = np.full(max((mc.index for mc in classes), default=-1) + 1, DEFAULT_THRESHOLD, np.float32)
    if threshold is None:
        return out
    if not isinstance(threshold, Mapping):
        out[:] = threshold
        return out
    index = {mc.title: mc.index for mc in classes}
    for title, value in threshold.items():
        if title not in index:
            raise ConfigError(
                f"no model class {title!r}; the model's classes are {', '.join(index)}",
                json_path=f"$.mode.threshold.{title}",
            )
        out[index[title]] = value
    return out


def decide_labelsets(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """H×W×K probabilities → packed H×W mask: bit k where probability k ≥ ``thresholds[..., k]`` (K thresholds,
    or one per pixel and class)."""
    k = probs.shape[2]
    thresholds = np.asarray(thresholds)
    out = np.zeros(probs.shape[:2], labelset_dtype(k))
    for index in range(k):
        out |= (probs[:, :, index] >= thresholds[..., index]).astype(out.dtype) << out.dtype.type(index)
    return out


def class_region(mask: np.ndarray, index: int) -> np.ndarray:
    """H×W bool: where bit ``index`` of a packed mask is set."""
    return ((mask >> mask.dtype.type(index)) & 1) == 1


def unpack(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Packed H×W → H×W×K bool (one plane per class)."""
    return np.stack([class_region(mask, k) for k in range(num_classes)], axis=2)
