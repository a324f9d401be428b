"""Bitmap ``data`` string codec, byte for byte the original's (docs/original-behaviour.md, "Bitmap codec").

Encode: tight bool mask -> uint8 0/1 -> PIL palette image ([0,0,0, 255,255,255]) -> PNG with ``transparency=0``
(1-bit indexed, tRNS makes index 0 transparent) -> ``zlib.compress`` -> base64.
Decode: base64 -> zlib (skipped when the bytes already are a PNG, as newer SDKs write) -> PNG read
"unchanged": >= 4 channels -> mask = alpha != 0 (palette+tRNS and RGBA),
1 channel -> value != 0 (grayscale); 3 channels without alpha -> error.
"""

from __future__ import annotations

import base64
import binascii
import io
import zlib

import cv2
import numpy as np
from PIL import Image

_PALETTE = [0, 0, 0, 255, 255, 255]
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_bitmap_data(mask: np.ndarray) -> str:
    """Encode a (tight-cropped) boolean mask as the Supervisely bitmap ``data`` string."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"bitmap mask must be a non-empty 2-D array, got shape {mask.shape}")
    img = Image.fromarray(mask.astype(bool).astype(np.uint8), mode="L")
    img.putpalette(_PALETTE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", transparency=0, optimize=0)
    return base64.b64encode(zlib.compress(buf.getvalue())).decode("ascii")


def decode_bitmap_data(data: str) -> np.ndarray:
    """Decode a bitmap ``data`` string to a boolean mask. Raises ValueError on malformed input."""
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"invalid base64 ({exc})") from None
    if raw.startswith(_PNG_SIGNATURE):
        png = raw  # uncompressed base64 PNG (accepted by post-legacy SDKs)
    else:
        try:
            png = zlib.decompress(raw)
        except zlib.error as exc:
            raise ValueError(f"invalid zlib stream ({exc})") from None
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("decompressed data is not a PNG file")
    img = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("cannot decode the PNG image")
    if img.ndim == 2:
        return img != 0
    if img.shape[2] >= 4:
        return img[:, :, 3] != 0
    if img.shape[2] == 1:
        return img[:, :, 0] != 0
    raise ValueError("wrong internal mask format (a PNG without alpha channel and not grayscale)")
