"""Image preprocessing shared by training and inference (recorded in checkpoints).

The original trained with bicubic resize and inferred with bilinear; unetkit uses bicubic for images in both
(documented difference) and nearest for label maps.
"""

from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_INTERP = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def resize_image(image: np.ndarray, width: int, height: int, interpolation: str = "bicubic") -> np.ndarray:
    """Resize an H×W(×C) array to (height, width); returns the input unchanged when sizes already match."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    return cv2.resize(image, (width, height), interpolation=_INTERP[interpolation])


def resize_labels(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of an integer label map (the original's skimage order=0)."""
    if labels.shape[0] == height and labels.shape[1] == width:
        return labels
    src = labels.astype(np.int32, copy=False)
    return cv2.resize(src, (width, height), interpolation=cv2.INTER_NEAREST).astype(labels.dtype, copy=False)


def normalize(
    image: np.ndarray, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> np.ndarray:
    """uint8 RGB H×W×3 → float32 3×H×W, ÷255 then ImageNet-normalised (torchvision ToTensor + Normalize)."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    x = image.astype(np.float32) * (1.0 / 255.0)
    x -= np.asarray(mean, dtype=np.float32)
    x /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def ensure_rgb(image: np.ndarray) -> np.ndarray:
    """Grayscale → RGB, RGBA → RGB (alpha dropped, as the original deploy did)."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image
