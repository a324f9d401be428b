"""Hostile inputs built in a few KB: PNG bombs, bitmap strings, minimal projects with one broken item."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from unetkit.project import encode_bitmap_data, write_image

BOMB_SIDE = 30000  # 900 M pixels: the decoded bitmap alone would take 0.9 GB (1 byte per pixel)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bomb(width: int = BOMB_SIDE, height: int = BOMB_SIDE, *, rows: int | None = None) -> bytes:
    """A 1-bit grayscale PNG of ``width`` x ``height`` whose rows are all zero except the first (set), deflated
    to ~0.1 % of its size; ``rows`` limits the IDAT to that many rows (a truncated file)."""
    line = b"\x00" + b"\x00" * ((width + 7) // 8)
    first = b"\x00" + b"\xff" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    n = height if rows is None else rows
    parts, block = [comp.compress(first)], line * 256
    for _ in range((n - 1) // 256):
        parts.append(comp.compress(block))
    parts.append(comp.compress(line * ((n - 1) % 256)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
    )


_BOMB_CACHE: dict = {}


def bitmap_bomb_data(side: int = BOMB_SIDE) -> str:
    """A bitmap ``data`` string (base64 of zlib of a PNG) that inflates to a ``side`` x ``side`` mask."""
    if side not in _BOMB_CACHE:
        _BOMB_CACHE[side] = base64.b64encode(zlib.compress(png_bomb(side, side), 9)).decode("ascii")
    return _BOMB_CACHE[side]


def small_bitmap_data(h: int = 2, w: int = 2) -> str:
    return encode_bitmap_data(np.ones((h, w), bool))


META = {
    "classes": [
        {"title": "blob", "shape": "bitmap", "color": "#FF0000", "geometry_config": {}},
        {"title": "road", "shape": "polygon", "color": "#00FF00", "geometry_config": {}},
        {"title": "box", "shape": "rectangle", "color": "#0000FF", "geometry_config": {}},
    ],
    "tags": [],
}


def polygon(points, cls="road") -> dict:
    return {"classTitle": cls, "tags": [], "points": {"exterior": points, "interior": []}}


def bitmap(origin, data, cls="blob") -> dict:
    return {"classTitle": cls, "tags": [], "bitmap": {"origin": origin, "data": data}}


def make_project(
    root: Path,
    objects: list | None = None,
    *,
    size=(64, 64),
    ann_text: str | None = None,
    image: np.ndarray | bytes | None = None,
    name: str = "a.png",
    meta: dict | None = None,
) -> Path:
    """A one-image project ``root`` (dataset ``ds``): ``objects`` (or the raw ``ann_text``) as the annotation of
    ``name``; ``image`` an array, raw file bytes, or a grey image of ``size`` (H, W)."""  # fmt: skip
    (root / "ds" / "img").mkdir(parents=True)
    (root / "ds" / "ann").mkdir()
    (root / "meta.json").write_text(json.dumps(meta or META))
    img_path = root / "ds" / "img" / name
    if isinstance(image, bytes):
        img_path.write_bytes(image)
    else:
        write_image(img_path, image if image is not None else np.full((*size, 3), 128, np.uint8))
    if ann_text is None:
        ann = {"description": "", "size": {"height": size[0], "width": size[1]}, "tags": [],
               "objects": objects or []}  # fmt: skip
        ann_text = json.dumps(ann, allow_nan=True)
    (root / "ds" / "ann" / f"{name}.json").write_text(ann_text)
    return root
