"""Bitmap ``data`` string codec, byte for byte the original's (docs/original-behaviour.md, "Bitmap codec").

Encode: tight bool mask -> uint8 0/1 -> PIL palette image ([0,0,0, 255,255,255]) -> PNG with ``transparency=0``
(1-bit indexed, tRNS makes index 0 transparent) -> ``zlib.compress`` -> base64.
Decode: base64 -> zlib (skipped when the bytes already are a PNG, as newer SDKs write; bounded by the size in the
PNG header, which is checked before inflating the rest) -> PNG read
"unchanged": >= 4 channels -> mask = alpha != 0 (palette+tRNS and RGBA),
1 channel -> value != 0 (grayscale); 3 channels without alpha -> error.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import zlib
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from unetkit.project.limits import check_pixels

_PALETTE = [0, 0, 0, 255, 255, 255]
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEAD = 24  # signature (8) + IHDR length and type (8) + width and height (8)


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


def decode_bitmap_data(data: str, *, check_size: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Decode a bitmap ``data`` string to a boolean mask. Raises ValueError on malformed input.

    The PNG header is read first and ``check_size(width, height)`` (default: the global pixel cap) may refuse
    the size before anything large is inflated or decoded; the zlib layer is inflated with a bound derived
    from that size, so a small string cannot expand to gigabytes.
    """
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise ValueError(f"invalid base64 ({exc})") from None
    png = _inflate_png(raw, check_size or _check_global_cap)
    try:
        img = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ValueError(f"cannot decode the PNG image ({str(exc).strip().splitlines()[-1]})") from None
    if img is None:
        raise ValueError("cannot decode the PNG image")
    if img.ndim == 2:
        return img != 0
    if img.shape[2] >= 4:
        return img[:, :, 3] != 0
    if img.shape[2] == 1:
        return img[:, :, 0] != 0
    raise ValueError("wrong internal mask format (a PNG without alpha channel and not grayscale)")


def png_size(head: bytes) -> tuple[int, int]:
    """(width, height) from the first 24 bytes of a PNG file (signature + IHDR). ValueError otherwise."""
    if not head.startswith(_PNG_SIGNATURE):
        raise ValueError("decompressed data is not a PNG file")
    if len(head) < _HEAD or head[12:16] != b"IHDR":
        raise ValueError("PNG file without an IHDR header")
    width, height = struct.unpack(">II", head[16:24])
    if width == 0 or height == 0:
        raise ValueError(f"PNG header has an empty size {width}x{height}")
    return width, height


def _inflate_png(raw: bytes, check_size: Callable[[int, int], None]) -> bytes:
    """The PNG file inside ``raw`` (zlib-wrapped, or bare as newer SDKs write), size-checked from its header."""
    if raw.startswith(_PNG_SIGNATURE):
        check_size(*png_size(raw))
        return raw
    inflater = zlib.decompressobj()
    try:
        head = inflater.decompress(raw, _HEAD)
        width, height = png_size(head)
        check_size(width, height)
        # 8 bytes per pixel (16-bit RGBA) + a filter byte per row, deflate's worst-case overhead and 1 MB of
        # ancillary chunks bound any honest PNG of this size.
        bound = height * (1 + 8 * width) * 101 // 100 + (1 << 20)
        rest = inflater.decompress(inflater.unconsumed_tail, bound)
    except zlib.error as exc:
        raise ValueError(f"invalid zlib stream ({exc})") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"the PNG of a {width}x{height} bitmap inflates to more than {bound} bytes")
    return head + rest


def _check_global_cap(width: int, height: int) -> None:
    check_pixels(width, height, "bitmap")
