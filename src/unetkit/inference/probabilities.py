"""Probability maps in ``customBigData``: ``multichannelBitmap`` = base64(zlib(np.save(H×W×1 float32))).

Original behaviour: docs/original-behaviour.md, "Probability maps".
"""

from __future__ import annotations

import base64
import io
import zlib

import numpy as np

from unetkit.errors import FormatError

SHAPE = "multichannelBitmap"


def encode_multichannel(data: np.ndarray) -> str:
    """H×W or H×W×K array → base64(zlib(np.save float32 H×W×K, allow_pickle=False))."""
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return base64.b64encode(zlib.compress(buf.getvalue(), 1)).decode("ascii")


def decode_multichannel(text: str, *, file=None, json_path: str = "$") -> np.ndarray:
    """Inverse of :func:`encode_multichannel` (H×W×K float32)."""
    try:
        raw = zlib.decompress(base64.b64decode(text))
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a format error
        raise FormatError(
            f"cannot decode multichannelBitmap data: {exc}", file=file, json_path=json_path
        ) from None


def probability_label_json(class_title: str, origin: tuple[int, int], data: np.ndarray) -> dict:
    """One ``probabilityLabels`` entry: the class's map over a region whose top-left pixel is ``origin`` (x, y)."""
    return {
        "classTitle": class_title,
        "description": "",
        "tags": [],
        "geometryType": SHAPE,
        "shape": SHAPE,
        SHAPE: {"origin": [int(origin[0]), int(origin[1])], "data": encode_multichannel(data)},
    }


def probability_class_json(title: str, color: str) -> dict:
    return {"title": title, "shape": SHAPE, "color": color, "geometry_config": {}, "hotkey": ""}


def add_probabilities(custom_big_data: dict, classes: list[dict], labels: list[dict]) -> dict:
    """Return a copy of ``customBigData`` with the probability classes/labels appended (class entries deduplicated)."""
    out = dict(custom_big_data or {})
    known = list(out.get("probabilityClasses", []))
    titles = {c.get("title") for c in known}
    known += [c for c in classes if c["title"] not in titles]
    out["probabilityClasses"] = known
    out["probabilityLabels"] = list(out.get("probabilityLabels", [])) + labels
    return out


def read_probability_map(
    custom_big_data: dict, class_title: str, height: int, width: int, *, file=None
) -> np.ndarray | None:
    """Full-image H×W float32 map of one class (regions not covered are 0); None when the class has no map."""
    labels = (custom_big_data or {}).get("probabilityLabels", [])
    out = None
    for i, label in enumerate(labels):
        if label.get("classTitle") != class_title:
            continue
        path = f"$.customBigData.probabilityLabels[{i}].{SHAPE}"
        geo = label.get(SHAPE)
        if not isinstance(geo, dict) or "data" not in geo or "origin" not in geo:
            raise FormatError("needs `origin` and `data`", file=file, json_path=path)
        arr = decode_multichannel(geo["data"], file=file, json_path=path + ".data")
        x, y = (int(v) for v in geo["origin"])
        if arr.ndim == 3:
            arr = arr[:, :, 0]
        if out is None:
            out = np.zeros((height, width), dtype=np.float32)
        h, w = arr.shape
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + h, height), min(x + w, width)
        if y1 > y0 and x1 > x0:
            out[y0:y1, x0:x1] = arr[y0 - y : y1 - y, x0 - x : x1 - x]
    return out
