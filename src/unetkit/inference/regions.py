"""Regions the model sees in the roi and bboxes modes: the ROI window and padded object boxes."""

from __future__ import annotations

import math

from unetkit import inference_config as cfg
from unetkit.errors import ConfigError
from unetkit.inference.tiling import Window


def _clipped(top: int, left: int, bottom: int, right: int, height: int, width: int) -> Window | None:
    """The inclusive box clipped to a height×width image; None when nothing is left."""
    top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, height - 1), min(right, width - 1)
    if bottom < top or right < left:
        return None
    return Window(top, left, bottom - top + 1, right - left + 1)


def roi_window(height: int, width: int, bounds: cfg.Bounds) -> Window:
    """ROI = rows top..H−bottom−1, cols left..W−right−1 (inclusive), clipped to the image."""
    top = cfg.side_pixels(bounds.top, height)
    left = cfg.side_pixels(bounds.left, width)
    bottom = height - cfg.side_pixels(bounds.bottom, height) - 1
    right = width - cfg.side_pixels(bounds.right, width) - 1
    win = _clipped(top, left, bottom, right, height, width)
    if win is None:
        raise ConfigError(f"the ROI is empty for a {width}x{height} image", json_path="$.mode.bounds")
    return win


def padded_box(label, padding: cfg.Bounds, height: int, width: int) -> Window | None:
    """The label's bbox padded outward (percent of the bbox side), clipped to the image; None when empty."""
    box = label.geometry.bbox()
    top, left = int(math.floor(box.top)), int(math.floor(box.left))
    bottom, right = int(math.ceil(box.bottom)), int(math.ceil(box.right))
    bh, bw = bottom - top + 1, right - left + 1
    top -= cfg.side_pixels(padding.top, bh)
    left -= cfg.side_pixels(padding.left, bw)
    bottom += cfg.side_pixels(padding.bottom, bh)
    right += cfg.side_pixels(padding.right, bw)
    return _clipped(top, left, bottom, right, height, width)
