"""Supervisely geometries: point, rectangle, polygon, line, bitmap, and unknown shapes kept verbatim.

Original behaviour: docs/original-behaviour.md, "Geometries".

Coordinates: x = column, y = row, origin top-left. The SDK stores ints; fractional coordinates (written by legacy
DTL ``resize``/``rotate``) are read and drawn with ``floor``, as the current SDK (6.74) rasterises them. Earlier
unetkit versions rounded them half-to-even instead, which moved about 1.5 % of such polygons' area by a pixel.
NaN, infinities and coordinates beyond ±1e9 are refused (FormatError).

Drawing follows the original SDK (docs/original-behaviour.md, "Rasterisation"): every vector shape is first drawn
as 0/1 into a scratch mask with OpenCV, then ``canvas[mask] = value``. For polygons the exterior is filled
with 1 and the holes are then filled with 0
*in the scratch mask*, so hole pixels keep whatever the canvas held before (the SDK's ``Polygon._draw_impl``);
they are not reset to the background. Rectangles are filled with inclusive corners, lines are 1-px polylines,
points are single pixels. Bitmaps set their True pixels; everything is clipped to the canvas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from unetkit.errors import FormatError
from unetkit.project.limits import check_pixels, coordinate_problem

# Keys of a label that are not part of its geometry payload.
LABEL_KEYS = ("classTitle", "description", "tags", "geometryType", "shape")
LABEL_META_KEYS = (
    "id",
    "classId",
    "labelerLogin",
    "createdAt",
    "updatedAt",
    "objectId",
    "instance",
    "nnCreated",
)
RAW_PAYLOAD_KEYS = {
    "graph": ("nodes",),
    "cuboid": ("points", "faces"),
    "multichannelBitmap": ("multichannelBitmap",),
    "alpha_mask": ("bitmap",),
    "point_cloud": ("points",),
}


class Geometry:
    """Base class. Subclasses implement payload serialisation, bbox, translation, drawing and area."""

    name: str = ""

    def to_json(self) -> dict:
        raise NotImplementedError

    def bbox(self) -> Rectangle:
        raise NotImplementedError

    def translate(self, dx, dy) -> Geometry:
        raise NotImplementedError

    def draw(self, canvas: np.ndarray, value) -> None:
        raise NotImplementedError

    def area(self) -> float:
        return 0.0

    def to_mask(self, height: int, width: int) -> np.ndarray:
        """Boolean (height, width) mask of the pixels this geometry covers."""
        mask = np.zeros((height, width), dtype=bool)
        self.draw(mask, True)
        return mask


def _coord_out(v: float):
    v = float(v)
    return int(v) if v.is_integer() else v


def _points_out(arr: np.ndarray) -> list:
    return [[_coord_out(x), _coord_out(y)] for x, y in arr]


def _draw_scratch(canvas: np.ndarray, value, box: Rectangle, paint) -> None:
    """Clip ``box`` to the canvas, let ``paint(mask, dx, dy)`` draw 0/1 into a uint8 scratch mask of that size
    (with coordinates shifted by -dx, -dy), then set ``canvas[mask] = value``."""
    h, w = canvas.shape[:2]
    left, top = max(int(math.floor(box.left)), 0), max(int(math.floor(box.top)), 0)
    right, bottom = min(int(math.ceil(box.right)), w - 1), min(int(math.ceil(box.bottom)), h - 1)
    if left > right or top > bottom:
        return
    scratch = np.zeros((bottom - top + 1, right - left + 1), dtype=np.uint8)
    paint(scratch, left, top)
    canvas[top : bottom + 1, left : right + 1][scratch.astype(bool)] = value


def _int_pts(arr: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return (np.floor(arr) - (dx, dy)).astype(np.int32)


_FAR = 1 << 14  # OpenCV's fill time grows with the coordinates: rings reaching this far out are clipped first


def _clamp(v: int, n: int) -> int:
    return min(max(v, -1), n)


def _near_ring(ring: np.ndarray, shape: tuple) -> np.ndarray:
    """``ring`` (int32 [x, y]) clipped to a window a few pixels larger than a mask of ``shape`` when it reaches
    far outside it (Sutherland–Hodgman; float64 vertices then), so that a hostile 1e9-pixel polygon fills as fast
    as a small one (OpenCV itself took 8 s for one). Ordinary rings are returned untouched; of a clipped ring,
    only boundary pixels of the edges that leave the window may differ from OpenCV's unclipped result."""
    h, w = shape
    if ring.size == 0 or (np.abs(ring) < _FAR + max(h, w)).all():
        return ring
    pts = ring.astype(np.float64)
    lo, hi = -4.0, (w + 3.0, h + 3.0)
    for axis, bound, keep_below in ((0, lo, False), (0, hi[0], True), (1, lo, False), (1, hi[1], True)):
        if len(pts) == 0:
            break
        inside = pts[:, axis] <= bound if keep_below else pts[:, axis] >= bound
        out = []
        for i in range(len(pts)):
            a, b = pts[i - 1], pts[i]
            a_in, b_in = inside[i - 1], inside[i]
            if a_in != b_in:  # the edge crosses the bound: add the crossing point
                t = (bound - a[axis]) / (b[axis] - a[axis])
                out.append(a + t * (b - a))
            if b_in:
                out.append(b)
        pts = np.asarray(out, dtype=np.float64).reshape(-1, 2)
    return pts


def _fill(m: np.ndarray, rings: list, value) -> None:
    """``cv2.fillPoly`` of int32 rings; far-reaching rings are clipped first and all are then drawn with 1/256
    pixel precision (integer vertices land on the same fixed-point grid, so they fill the same pixels)."""
    near = [_near_ring(r, m.shape) for r in rings]
    if all(r.dtype == np.int32 for r in near):
        cv2.fillPoly(m, near, value)
    else:
        cv2.fillPoly(m, [np.round(r * 256).astype(np.int32) for r in near], value, shift=8)


@dataclass
class Point(Geometry):
    x: float
    y: float
    name = "point"

    def to_json(self) -> dict:
        return {"points": {"exterior": [[_coord_out(self.x), _coord_out(self.y)]], "interior": []}}

    def bbox(self) -> Rectangle:
        return Rectangle(self.x, self.y, self.x, self.y)

    def translate(self, dx, dy) -> Point:
        return Point(self.x + dx, self.y + dy)

    def draw(self, canvas: np.ndarray, value) -> None:
        x, y = math.floor(self.x), math.floor(self.y)
        if 0 <= y < canvas.shape[0] and 0 <= x < canvas.shape[1]:
            canvas[y, x] = value


@dataclass
class Rectangle(Geometry):
    """Axis-aligned box with INCLUSIVE corners: width = right - left + 1."""

    left: float
    top: float
    right: float
    bottom: float
    name = "rectangle"

    def __post_init__(self):
        self.left, self.right = min(self.left, self.right), max(self.left, self.right)
        self.top, self.bottom = min(self.top, self.bottom), max(self.top, self.bottom)

    @property
    def width(self):
        return self.right - self.left + 1

    @property
    def height(self):
        return self.bottom - self.top + 1

    def to_json(self) -> dict:
        pts = [
            [_coord_out(self.left), _coord_out(self.top)],
            [_coord_out(self.right), _coord_out(self.bottom)],
        ]
        return {"points": {"exterior": pts, "interior": []}}

    def bbox(self) -> Rectangle:
        return Rectangle(self.left, self.top, self.right, self.bottom)

    def translate(self, dx, dy) -> Rectangle:
        return Rectangle(self.left + dx, self.top + dy, self.right + dx, self.bottom + dy)

    def area(self) -> float:
        return float(self.width * self.height)

    def draw(self, canvas: np.ndarray, value) -> None:
        def paint(m, dx, dy):
            h, w = (
                m.shape
            )  # corners clamped just outside the scratch mask: same pixels, and fast when far out
            p1 = (_clamp(math.floor(self.left) - dx, w), _clamp(math.floor(self.top) - dy, h))
            p2 = (_clamp(math.floor(self.right) - dx, w), _clamp(math.floor(self.bottom) - dy, h))
            cv2.rectangle(m, p1, p2, 1, thickness=cv2.FILLED)

        _draw_scratch(canvas, value, self, paint)


def _as_points(arr) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    return a.reshape(-1, 2) if a.size else np.zeros((0, 2), np.float64)


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _bbox_of(arr: np.ndarray) -> Rectangle:
    return Rectangle(
        float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 0].max()), float(arr[:, 1].max())
    )


@dataclass(eq=False)
class Polygon(Geometry):
    exterior: np.ndarray
    interiors: list = field(default_factory=list)
    name = "polygon"

    def __post_init__(self):
        self.exterior = _as_points(self.exterior)
        self.interiors = [_as_points(r) for r in self.interiors]

    def __eq__(self, other):
        return (
            isinstance(other, Polygon)
            and np.array_equal(self.exterior, other.exterior)
            and len(self.interiors) == len(other.interiors)
            and all(np.array_equal(a, b) for a, b in zip(self.interiors, other.interiors))
        )

    def to_json(self) -> dict:
        return {
            "points": {
                "exterior": _points_out(self.exterior),
                "interior": [_points_out(r) for r in self.interiors],
            }
        }

    def bbox(self) -> Rectangle:
        return _bbox_of(self.exterior)

    def translate(self, dx, dy) -> Polygon:
        return Polygon(self.exterior + (dx, dy), [r + (dx, dy) for r in self.interiors])

    def area(self) -> float:
        """Exterior area minus hole areas (shoelace on the stored vertices)."""
        return _ring_area(self.exterior) - sum(_ring_area(r) for r in self.interiors)

    def draw(self, canvas: np.ndarray, value) -> None:
        def paint(m, dx, dy):
            _fill(m, [_int_pts(self.exterior, dx, dy)], 1)
            if self.interiors:
                _fill(m, [_int_pts(r, dx, dy) for r in self.interiors], 0)

        _draw_scratch(canvas, value, self.bbox(), paint)


@dataclass(eq=False)
class Polyline(Geometry):
    points: np.ndarray
    name = "line"

    def __post_init__(self):
        self.points = _as_points(self.points)

    def __eq__(self, other):
        return isinstance(other, Polyline) and np.array_equal(self.points, other.points)

    def to_json(self) -> dict:
        return {"points": {"exterior": _points_out(self.points), "interior": []}}

    def bbox(self) -> Rectangle:
        return _bbox_of(self.points)

    def translate(self, dx, dy) -> Polyline:
        return Polyline(self.points + (dx, dy))

    def draw(self, canvas: np.ndarray, value) -> None:
        def paint(m, dx, dy):
            cv2.polylines(m, [_int_pts(self.points, dx, dy)], isClosed=False, color=1, thickness=1)

        _draw_scratch(canvas, value, self.bbox(), paint)


@dataclass(eq=False)
class Bitmap(Geometry):
    """Boolean mask placed at ``origin`` (x, y). The mask is cropped to its tight box on construction
    (as the SDK does); an empty mask is an error."""

    origin: tuple
    mask: np.ndarray
    name = "bitmap"

    def __post_init__(self):
        mask = np.asarray(self.mask).astype(bool, copy=False)
        if mask.ndim != 2:
            raise ValueError(f"bitmap mask must be 2-D, got shape {mask.shape}")
        rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
        if not rows.any():
            raise ValueError("a bitmap with an empty mask is not supported")
        r0, r1 = np.flatnonzero(rows)[[0, -1]]
        c0, c1 = np.flatnonzero(cols)[[0, -1]]
        self.mask = np.ascontiguousarray(mask[r0 : r1 + 1, c0 : c1 + 1])
        self.origin = (int(self.origin[0]) + int(c0), int(self.origin[1]) + int(r0))

    def __eq__(self, other):
        return (
            isinstance(other, Bitmap)
            and self.origin == other.origin
            and np.array_equal(self.mask, other.mask)
        )

    @staticmethod
    def from_full_mask(mask: np.ndarray) -> Bitmap | None:
        """Bitmap of the True pixels of a full-image mask, or None when it is empty."""
        mask = np.asarray(mask).astype(bool, copy=False)
        return Bitmap((0, 0), mask) if mask.any() else None

    def full_mask(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), dtype=bool)
        self.draw(out, True)
        return out

    def to_json(self) -> dict:
        from unetkit.project.bitmap_codec import encode_bitmap_data

        return {"bitmap": {"origin": [self.origin[0], self.origin[1]], "data": encode_bitmap_data(self.mask)}}

    def bbox(self) -> Rectangle:
        x, y = self.origin
        return Rectangle(x, y, x + self.mask.shape[1] - 1, y + self.mask.shape[0] - 1)

    def translate(self, dx, dy) -> Bitmap:
        return Bitmap((self.origin[0] + int(dx), self.origin[1] + int(dy)), self.mask)

    def area(self) -> float:
        return float(self.mask.sum())

    def draw(self, canvas: np.ndarray, value) -> None:
        h, w = canvas.shape[:2]
        x, y = self.origin
        mh, mw = self.mask.shape
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + mw, w), min(y + mh, h)
        if x0 >= x1 or y0 >= y1:
            return
        sub = self.mask[y0 - y : y1 - y, x0 - x : x1 - x]
        canvas[y0:y1, x0:x1][sub] = value


@dataclass
class RawGeometry(Geometry):
    """A geometry unetkit does not interpret (graph, cuboid, ...): kept and written back verbatim."""

    shape: str
    payload: dict

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.shape

    def to_json(self) -> dict:
        return dict(self.payload)

    def bbox(self) -> Rectangle:
        pts = _collect_xy(self.payload)
        if not pts:
            raise ValueError(f"geometry {self.shape!r} has no coordinates")
        problem = next((p for xy in pts for p in map(coordinate_problem, xy) if p), None)
        if problem:
            raise ValueError(f"geometry {self.shape!r}: {problem}")
        return _bbox_of(np.asarray(pts, dtype=np.float64))

    def translate(self, dx, dy) -> Geometry:
        raise ValueError(f"cannot transform geometry {self.shape!r} (kept verbatim, not interpreted)")

    def draw(self, canvas: np.ndarray, value) -> None:
        raise ValueError(f"cannot rasterise geometry {self.shape!r} (kept verbatim, not interpreted)")


def _collect_xy(obj) -> list:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "loc" and _is_xy(v):
                out.append(v)
            else:
                out.extend(_collect_xy(v))
    elif isinstance(obj, list):
        if _is_xy(obj):
            out.append(obj)
        else:
            for v in obj:
                out.extend(_collect_xy(v))
    return out


def _is_xy(v) -> bool:
    return (
        isinstance(v, list)
        and len(v) == 2
        and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v)
    )


# ----------------------------------------------------------------------------------------------- parsing


def _fail(msg, file, path):
    raise FormatError(msg, file=file, json_path=path)


def _read_point_list(raw, file, path, min_points: int) -> np.ndarray:
    if not isinstance(raw, list):
        _fail(f"expected a list of [x, y] points, got {type(raw).__name__}", file, path)
    out = []
    for i, p in enumerate(raw):
        if not _is_xy(p):
            _fail(f"expected a point [x, y] of two numbers, got {p!r:.60}", file, f"{path}[{i}]")
        problem = coordinate_problem(p[0]) or coordinate_problem(p[1])
        if problem:
            _fail(problem, file, f"{path}[{i}]")
        out.append([math.floor(p[0]), math.floor(p[1])])  # the current SDK's rule for fractional input
    if len(out) < min_points:
        _fail(f"needs at least {min_points} points, got {len(out)}", file, path)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _read_points_obj(obj: dict, file, path) -> tuple[dict, str]:
    pts = obj.get("points")
    if not isinstance(pts, dict):
        _fail(
            "missing or invalid 'points' object (expected {'exterior': [...], 'interior': [...]})", file, path
        )
    if "exterior" not in pts:
        _fail("missing key 'exterior'", file, f"{path}.points")
    return pts, f"{path}.points"


def geometry_from_json(shape: str, obj: dict, *, file=None, json_path="$", image_size=None) -> Geometry:
    """Parse the geometry of a label ``obj`` (the whole object dict) whose shape is ``shape``.

    ``image_size`` (height, width) of the annotation bounds a bitmap's PNG before it is decoded."""
    if shape in ("point", "rectangle", "polygon", "line"):
        pts, p = _read_points_obj(obj, file, json_path)
        interior = pts.get("interior", [])
        if shape == "point":
            ext = _read_point_list(pts["exterior"], file, f"{p}.exterior", 1)
            if len(ext) != 1:
                _fail(f"a point needs exactly 1 point, got {len(ext)}", file, f"{p}.exterior")
            return Point(int(ext[0, 0]), int(ext[0, 1]))
        if shape == "rectangle":
            ext = _read_point_list(pts["exterior"], file, f"{p}.exterior", 2)
            if len(ext) != 2:
                _fail(f"a rectangle needs exactly 2 points, got {len(ext)}", file, f"{p}.exterior")
            return Rectangle(*(int(v) for v in ext.reshape(-1)))
        if shape == "line":
            return Polyline(_read_point_list(pts["exterior"], file, f"{p}.exterior", 2))
        ext = _read_point_list(pts["exterior"], file, f"{p}.exterior", 3)
        if not isinstance(interior, list):
            _fail("'interior' must be a list of rings", file, f"{p}.interior")
        holes = [_read_point_list(r, file, f"{p}.interior[{i}]", 3) for i, r in enumerate(interior)]
        return Polygon(ext, holes)
    if shape == "bitmap":
        return _bitmap_from_json(obj, file, json_path, image_size)
    keys = RAW_PAYLOAD_KEYS.get(shape)
    if keys is None:
        skip = set(LABEL_KEYS) | set(LABEL_META_KEYS)
        keys = tuple(k for k in obj if k not in skip)
    return RawGeometry(shape, {k: obj[k] for k in keys if k in obj})


def _bitmap_from_json(obj: dict, file, path, image_size) -> Bitmap:
    from unetkit.project.bitmap_codec import decode_bitmap_data

    bm = obj.get("bitmap")
    if not isinstance(bm, dict):
        _fail("missing or invalid 'bitmap' object (expected {'origin': [x, y], 'data': ...})", file, path)
    origin = bm.get("origin")
    if not _is_xy(origin):
        _fail(f"origin must be [x, y] integers, got {origin!r:.60}", file, f"{path}.bitmap.origin")
    problem = coordinate_problem(origin[0]) or coordinate_problem(origin[1])
    if problem or not all(float(c).is_integer() for c in origin):
        _fail(problem or f"origin must be [x, y] integers, got {origin!r:.60}", file, f"{path}.bitmap.origin")
    data = bm.get("data")
    if not isinstance(data, str):
        _fail("bitmap data must be a base64 string", file, f"{path}.bitmap.data")

    def check_size(width: int, height: int) -> None:
        where = f"{path}.bitmap.data"
        check_pixels(width, height, "bitmap", file=file, json_path=where)
        if image_size is not None and (height > image_size[0] or width > image_size[1]):
            _fail(
                f"bitmap is {width}x{height} (WxH), larger than its image ({image_size[1]}x{image_size[0]})",
                file,
                where,
            )

    try:
        mask = decode_bitmap_data(data, check_size=check_size)
        return Bitmap((int(origin[0]), int(origin[1])), mask)
    except ValueError as exc:
        _fail(f"cannot decode bitmap: {exc}", file, f"{path}.bitmap.data")
