"""Sliding-window grid (exactly the original's), blending weights and bounded-memory CPU stitching.

Original behaviour: docs/original-behaviour.md, "Inference modes".

The grid is row-major; all windows of one row share a top, so once a row of windows is done every image row above
the next row's top is final. :class:`BandStitcher` therefore keeps only a ``window_height``-row float32
accumulator; final rows go to a uint8/uint16 class-index mask (and, on request, a float16 probability map).
Peak memory for an H×W image with C classes ≈ H·W (mask) + (C+1)·window_h·W·4 bytes, instead of the
original's H·W·C·8 (float64 sums) — a 10,000² image with 2 classes needs ~100 MB + a few MB, not 1.6 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unetkit.errors import UnetkitError
from unetkit.inference.labelsets import decide_labelsets, labelset_dtype


class SlidingWindowError(UnetkitError):
    """The image and the window settings do not fit (the original's RuntimeErrors, made user errors)."""


@dataclass(frozen=True)
class Window:
    """A window rectangle: inclusive bounds like the format's rectangles."""

    top: int
    left: int
    height: int
    width: int

    @property
    def bottom(self) -> int:
        return self.top + self.height - 1

    @property
    def right(self) -> int:
        return self.left + self.width - 1


def window_grid(
    image_height: int,
    image_width: int,
    window_height: int,
    window_width: int,
    overlap_y: int = 0,
    overlap_x: int = 0,
) -> list[Window]:
    """Windows exactly as the original's ``SlidingWindows.get``.

    stride = window − overlap (< 1 → error); a window larger than the image → error; tops 0, s, 2s, … while
    < (H − h) + s, each clamped to H − h (same for lefts); row-major order.
    """
    stride_y, stride_x = window_height - overlap_y, window_width - overlap_x
    if min(stride_y, stride_x) < 1:
        raise SlidingWindowError("Wrong sliding window settings, overlap is too high.")
    if window_height > image_height or window_width > image_width:
        raise SlidingWindowError(
            f"Sliding window: window is larger than source (image): window {window_width}x{window_height}, "
            f"image {image_width}x{image_height}."
        )
    limit_y, limit_x = image_height - window_height, image_width - window_width
    tops = [min(t, limit_y) for t in range(0, limit_y + stride_y, stride_y)]
    lefts = [min(x, limit_x) for x in range(0, limit_x + stride_x, stride_x)]
    return [Window(t, x, window_height, window_width) for t in tops for x in lefts]


def blend_weights(height: int, width: int, kind: str = "constant", sigma_scale: float = 0.125) -> np.ndarray:
    """Per-pixel window weights (float32, max 1, strictly positive).

    ``constant``: all ones (the original's plain summation). ``gaussian``: separable Gaussian centred on the window
    with σ = ``sigma_scale`` × side (nnU-Net's importance map), floored at its smallest positive value so that
    border pixels still count.
    """
    if kind == "constant":
        return np.ones((height, width), dtype=np.float32)
    if kind != "gaussian":
        raise ValueError(f"unknown blend {kind!r}")

    def axis(n: int) -> np.ndarray:
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        sigma = max(n * sigma_scale, 1e-6)
        return np.exp(-0.5 * (x / sigma) ** 2)

    w = np.outer(axis(height), axis(width))
    w /= w.max()
    w = np.maximum(w, max(w[w > 0].min(), 1e-6))
    return w.astype(np.float32)


# Windows per forward pass when the mode does not set ``batch_size``. On the CPU a batch of 8 windows of 512²
# allocated 134 MB per forward that glibc maps and faults in afresh each time; batches of 1–2 were 25–40 % faster
# and used 600 MB less (2-core x86-64, `unet`). A GPU wants large batches.
CPU_WINDOW_BATCH_LARGE_INPUT = 1  # model input ≥ 512² pixels
CPU_WINDOW_BATCH = 2
GPU_WINDOW_BATCH = 8
_ARGMAX_ROWS = 64  # rows finalised per argmax call: a bounded int64 temporary


def default_window_batch(device_type: str, input_pixels: int) -> int:
    """Windows per forward pass on ``device_type`` ("cpu", "cuda", …) for a model input of ``input_pixels``."""
    if device_type == "cuda":
        return GPU_WINDOW_BATCH
    return CPU_WINDOW_BATCH_LARGE_INPUT if input_pixels >= 512 * 512 else CPU_WINDOW_BATCH


def index_dtype(num_classes: int) -> np.dtype:
    return np.dtype(np.uint8) if num_classes <= 256 else np.dtype(np.uint16)


class BandStitcher:
    """Accumulates weighted per-window class probabilities and finalises rows as soon as no window can touch them.

    Call :meth:`add` for every window of a grid row (same ``top``), then :meth:`advance` to the next row's top
    (finalises the rows above it); :meth:`finish` finalises the rest. Windows must come in non-decreasing ``top``.
    """

    def __init__(
        self,
        height: int,
        width: int,
        num_classes: int,
        window_height: int,
        *,
        keep_probabilities: bool = False,
        threshold: float | None = None,
        thresholds: np.ndarray | None = None,
    ):
        self.height, self.width, self.num_classes = height, width, num_classes
        self.threshold = threshold  # binary models: class 1 where its mean probability >= threshold
        # multi-label models: a packed mask, bit k where class k's mean probability >= thresholds[k]
        self.thresholds = None if thresholds is None else np.asarray(thresholds, np.float32)
        self.rows = min(window_height, height)
        self.base = 0  # image row of the buffer's first row
        self.acc = np.zeros((num_classes, self.rows, width), dtype=np.float32)
        self.wsum = np.zeros((self.rows, width), dtype=np.float32)
        dtype = index_dtype(num_classes) if thresholds is None else labelset_dtype(num_classes)
        self.mask = np.zeros((height, width), dtype=dtype)
        self.probabilities = (
            np.zeros((height, width, num_classes), dtype=np.float16) if keep_probabilities else None
        )

    def add(self, top: int, left: int, probs: np.ndarray, weight: np.ndarray) -> None:
        """``probs``: C×h×w float32 for the window at (top, left); ``weight``: h×w."""
        c, h, w = probs.shape
        r0 = top - self.base
        if r0 < 0 or r0 + h > self.rows:
            raise RuntimeError(
                f"window at row {top} (height {h}) is outside the stitching band at {self.base}"
            )
        self.acc[:, r0 : r0 + h, left : left + w] += probs * weight
        self.wsum[r0 : r0 + h, left : left + w] += weight

    def advance(self, next_top: int) -> None:
        """Finalise image rows [base, next_top) and slide the band down."""
        n = min(next_top, self.height) - self.base
        if n <= 0:
            return
        if n > self.rows:  # rows below the band were never covered by a window
            raise SlidingWindowError("Wrong sliding window moving, implementation error.")
        self._finalise(n)
        keep = self.rows - n
        if keep > 0:
            self.acc[:, :keep] = self.acc[:, n:]
            self.wsum[:keep] = self.wsum[n:]
        self.acc[:, max(keep, 0) :] = 0
        self.wsum[max(keep, 0) :] = 0
        self.base += n

    def finish(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Finalise the remaining rows; returns (class-index mask, mean probabilities H×W×C float16 or None)."""
        self.advance(self.height)
        return self.mask, self.probabilities

    def _finalise(self, n: int) -> None:
        wsum = self.wsum[:n]
        if (wsum <= 0).any():
            raise SlidingWindowError("Wrong sliding window moving, implementation error.")
        acc = self.acc[:, :n]
        rows = slice(self.base, self.base + n)
        # weights are equal across classes at a pixel, so argmax of the sum = argmax of the mean
        if self.thresholds is not None:
            self.mask[rows] = decide_labelsets(acc.transpose(1, 2, 0), self.thresholds * wsum[:, :, None])
        elif self.threshold is not None:
            self.mask[rows] = acc[1] >= self.threshold * wsum
        else:
            self._argmax_rows(acc)
        if self.probabilities is not None:
            self.probabilities[rows] = (acc / wsum[None]).transpose(1, 2, 0)

    def _argmax_rows(self, acc: np.ndarray) -> None:
        """mask rows from ``base`` = argmax over classes of ``acc`` (first maximum wins), a few rows at a time."""
        for r in range(0, acc.shape[1], _ARGMAX_ROWS):
            part = acc[:, r : r + _ARGMAX_ROWS]
            out = self.mask[self.base + r : self.base + r + part.shape[1]]
            if self.num_classes == 2 and out.dtype == np.uint8:  # class 1 only where strictly larger
                np.greater(part[1], part[0], out=out.view(bool))
            else:
                out[:] = part.argmax(axis=0)
