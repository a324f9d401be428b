"""Sample geometry and photometric augmentation (numpy only; labels always nearest-neighbour).

Every function takes an explicit ``numpy.random.Generator`` so that a sample is a pure function of
(seed, epoch, index): identical with any number of DataLoader workers, and after a resume.
"""

from __future__ import annotations

import numpy as np

from unetkit.models.preprocess import resize_image, resize_labels


def extract_window(
    image: np.ndarray, labels: np.ndarray, top: int, left: int, height: int, width: int, fill_label: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crop [top, top+height) × [left, left+width); parts outside the image are 0 (image) / ``fill_label``."""
    h, w = labels.shape
    if top >= 0 and left >= 0 and top + height <= h and left + width <= w:
        return image[top : top + height, left : left + width], labels[top : top + height, left : left + width]
    img = np.zeros((height, width) + image.shape[2:], dtype=image.dtype)
    lbl = np.full((height, width), fill_label, dtype=labels.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, h), min(left + width, w)
    if y1 > y0 and x1 > x0:
        img[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
        lbl[y0 - top : y1 - top, x0 - left : x1 - left] = labels[y0:y1, x0:x1]
    return img, lbl


def random_window(
    labels: np.ndarray,
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    foreground_prob: float = 0.0,
    background: int = 0,
    neutral: int = -1,
) -> tuple[int, int]:
    """Top-left of a random height×width window; with ``foreground_prob`` centred on a foreground pixel."""
    h, w = labels.shape
    if foreground_prob > 0 and rng.random() < foreground_prob:
        ys, xs = np.nonzero((labels != background) & (labels != neutral))
        if ys.size:
            k = int(rng.integers(ys.size))
            top = int(ys[k]) - height // 2
            left = int(xs[k]) - width // 2
            return min(max(top, min(0, h - height)), max(0, h - height)), min(
                max(left, min(0, w - width)), max(0, w - width)
            )
    top = int(rng.integers(0, h - height + 1)) if h > height else (h - height) // 2
    left = int(rng.integers(0, w - width + 1)) if w > width else (w - width) // 2
    return top, left


def tile_windows(height: int, width: int, tile_h: int, tile_w: int) -> list[tuple[int, int]]:
    """Non-overlapping tiles covering an image (the last row/column padded), as (top, left)."""
    return [(y, x) for y in range(0, max(height, 1), tile_h) for x in range(0, max(width, 1), tile_w)]


def scale_window(
    image: np.ndarray,
    labels: np.ndarray,
    out_h: int,
    out_w: int,
    scale: float,
    rng: np.random.Generator,
    fill_label: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Zoom by ``scale`` (>1 = zoom in) around a random position, output out_h×out_w."""
    src_h, src_w = max(1, round(out_h / scale)), max(1, round(out_w / scale))
    top, left = random_window(labels, src_h, src_w, rng)
    img, lbl = extract_window(image, labels, top, left, src_h, src_w, fill_label)
    return resize_image(img, out_w, out_h, "bicubic"), resize_labels(lbl, out_w, out_h)


def flips_and_rotations(image, labels, rng: np.random.Generator, hflip: float, vflip: float, rot90: float):
    """Random horizontal/vertical flips and 90° rotations (180° only for non-square samples)."""
    if hflip and rng.random() < hflip:
        image, labels = image[:, ::-1], labels[:, ::-1]
    if vflip and rng.random() < vflip:
        image, labels = image[::-1], labels[::-1]
    if rot90 and rng.random() < rot90:
        k = int(rng.integers(1, 4)) if labels.shape[0] == labels.shape[1] else 2
        image, labels = np.rot90(image, k), np.rot90(labels, k)
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def photometric(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float,
    contrast: float,
    gamma: float,
    peak: float | None = 255.0,
):
    """Brightness/contrast/gamma jitter → float32 in [0, ``peak``] (the pixel type's maximum; ``None`` for float
    data: no clipping, gamma on the image's own range), or the input if none."""
    if not (brightness or contrast or gamma):
        return image
    x = image.astype(np.float32)
    if brightness:
        x *= 1.0 + rng.uniform(-brightness, brightness)
    if contrast:
        mean = x.mean()
        x = (x - mean) * (1.0 + rng.uniform(-contrast, contrast)) + mean
    if peak is not None:
        np.clip(x, 0, peak, out=x)
    if gamma:
        g = float(np.exp(rng.uniform(-gamma, gamma)))
        lo, hi = (0.0, peak) if peak is not None else (float(x.min()), float(x.max()))
        if hi > lo:
            x = lo + (hi - lo) * ((x - lo) / (hi - lo)) ** g
    return x
