"""Response payloads of the modern API: class index masks (multi-label: one mask per class) and probability maps as
base64 PNGs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from unetkit.project import color_to_rgb


def png_base64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def encode_index_mask(mask: np.ndarray, classes: list[dict]) -> str:
    """H×W class indices → base64 PNG whose pixel values are the indices.

    Up to 256 classes: an 8-bit palette PNG coloured with the class colours (so it is also viewable);
    more: a 16-bit grayscale PNG.
    """
    top = int(mask.max()) if mask.size else 0
    if top > 255:
        return png_base64(Image.fromarray(mask.astype(np.uint16)))
    palette = np.zeros((256, 3), dtype=np.uint8)
    for cls in classes:
        if 0 <= cls["index"] < 256:
            palette[cls["index"]] = color_to_rgb(cls["color"])
    indices = np.ascontiguousarray(mask, dtype=np.uint8)
    img = Image.frombytes("P", (indices.shape[1], indices.shape[0]), indices.tobytes())
    img.putpalette(palette.reshape(-1).tolist())
    return png_base64(img)


def decode_index_mask(data: str) -> np.ndarray:
    """Inverse of :func:`encode_index_mask` (for clients and tests): base64 PNG → H×W int32 indices."""
    with Image.open(io.BytesIO(base64.b64decode(data))) as img:
        return np.asarray(img).astype(np.int32)


def encode_probabilities(probs: np.ndarray, classes: list[dict]) -> dict[str, str]:
    """H×W×C probabilities → {class title: base64 8-bit grayscale PNG of round(p·255)}."""
    out = {}
    for cls in classes:
        channel = probs[:, :, cls["index"]]
        quantised = np.clip(np.rint(channel * 255.0), 0, 255).astype(np.uint8)
        out[cls["title"]] = png_base64(Image.fromarray(quantised))
    return out


def encode_class_masks(masks: np.ndarray, classes: list[dict]) -> dict[str, str]:
    """Multi-label H×W×K bool → {class title: base64 1-bit PNG, white where the class is present} (may overlap)."""
    return {
        c["title"]: png_base64(Image.fromarray(np.ascontiguousarray(masks[:, :, c["index"]])))
        for c in classes
    }


def decode_class_mask(data: str) -> np.ndarray:
    """Inverse of one :func:`encode_class_masks` entry (for clients and tests): base64 PNG → H×W bool."""
    with Image.open(io.BytesIO(base64.b64decode(data))) as img:
        return np.asarray(img).astype(bool)


def class_pixel_counts(mask: np.ndarray, classes: list[dict]) -> dict[str, int]:
    """Pixels per class of a class-index mask, or of a multi-label H×W×K mask (a pixel may count for several)."""
    if mask.ndim == 3:
        return {c["title"]: int(np.count_nonzero(mask[:, :, c["index"]])) for c in classes}
    counts = np.bincount(
        mask.reshape(-1).astype(np.int64), minlength=max((c["index"] for c in classes), default=0) + 1
    )
    return {c["title"]: int(counts[c["index"]]) for c in classes}
