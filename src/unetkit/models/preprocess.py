"""Image preprocessing shared by training and inference (recorded in the model card).

Pixels are H×W×C arrays (uint8, uint16 or float32). A network input is ``(pixels / scale - mean) / std`` per
channel, C×h×w float32: 8-bit RGB uses ÷255 and the ImageNet statistics (the original); other data uses
per-channel statistics measured on the training set. The original trained with bicubic resize and inferred with
bilinear; unetkit uses bicubic for images in both (documented difference) and nearest for label maps.
"""

from __future__ import annotations

import cv2
import numpy as np

from unetkit.errors import UnetkitError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCALES = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}

_INTERP = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def resize_image(image: np.ndarray, width: int, height: int, interpolation: str = "bicubic") -> np.ndarray:
    """Resize H×W or H×W×C (any C) to (height, width); returns the input unchanged when sizes already match."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    flag = _INTERP[interpolation]
    if image.ndim == 3 and not 2 <= image.shape[2] <= 4:  # OpenCV drops a lone channel axis, refuses > 4
        planes = [cv2.resize(np.ascontiguousarray(image[:, :, i]), (width, height), interpolation=flag)
                  for i in range(image.shape[2])]  # fmt: skip
        return np.stack(planes, axis=2)
    return cv2.resize(image, (width, height), interpolation=flag)


def resize_labels(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of an integer label map (the original's skimage order=0)."""
    if labels.shape[0] == height and labels.shape[1] == width:
        return labels
    src = labels.astype(np.int32, copy=False)
    return cv2.resize(src, (width, height), interpolation=cv2.INTER_NEAREST).astype(labels.dtype, copy=False)


def normalize(
    image: np.ndarray,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    scale: float = 255.0,
) -> np.ndarray:
    """Pixels H×W×C (or H×W) → float32 C×H×W: ``(x / scale - mean) / std`` per channel (torchvision ToTensor +
    Normalize for 8-bit RGB). ``mean``/``std`` longer than C use their first C values (1-channel models of the
    first release stored the three ImageNet values)."""
    x = image if image.ndim == 3 else image[:, :, None]
    c = x.shape[2]
    x = x.astype(np.float32) * np.float32(1.0 / scale)
    x -= np.asarray(mean[:c], dtype=np.float32)
    x /= np.asarray(std[:c], dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def conform_channels(image: np.ndarray, in_channels: int) -> np.ndarray:
    """Pixels with the channel count a model takes (H×W×in_channels).

    8-bit pictures keep the original's conversions: grey → RGB and RGBA → RGB (alpha dropped) for 3-channel models,
    RGB(A) → grey for 1-channel ones. Anything else must already have ``in_channels`` channels.
    """
    x = image if image.ndim == 3 else image[:, :, None]
    c = x.shape[2]
    if c == in_channels:
        return x
    if x.dtype == np.uint8 and in_channels == 3 and c in (1, 4):
        return np.repeat(x, 3, axis=2) if c == 1 else np.ascontiguousarray(x[:, :, :3])
    if x.dtype == np.uint8 and in_channels == 1 and c in (3, 4):
        return cv2.cvtColor(np.ascontiguousarray(x[:, :, :3]), cv2.COLOR_RGB2GRAY)[:, :, None]
    raise UnetkitError(f"the image has {c} channel(s) ({x.dtype}) but the model takes {in_channels}")


def channel_statistics(images, scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of ``x / scale`` over pixel arrays (float64 sums; at most
    ~1 M pixels of each image, evenly strided); a constant channel gets std 1."""
    total = total_sq = None
    count = 0
    for image in images:
        x = image if image.ndim == 3 else image[:, :, None]
        flat = x.reshape(-1, x.shape[2])
        flat = flat[:: max(1, flat.shape[0] // 1_000_000)].astype(np.float64) / scale
        flat = flat[np.isfinite(flat).all(axis=1)]
        s, sq = flat.sum(axis=0), (flat * flat).sum(axis=0)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += flat.shape[0]
    if not count:
        raise UnetkitError("no pixels to measure the intensity statistics on")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    std = np.where(std > 1e-8, std, 1.0)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
