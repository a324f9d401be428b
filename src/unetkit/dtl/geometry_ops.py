"""Geometric transforms of annotations that stay consistent with the same transform of the image.

Conventions (pixel-centre coordinates, the rules `unetkit.project` rasterises with):
* Pixel ``(x, y)`` has its centre at integer ``(x, y)``; vector coordinates use the same frame, so a transform
  maps a vector point exactly like the image maps that pixel's centre.
* Crop windows are ``(left, top, right, bottom)`` with EXCLUSIVE right/bottom (``img[top:bottom, left:right]``),
  as in legacy DTL (docs/original-behaviour.md, "DTL layers"). Vector shapes are clipped with shapely to the
  window's pixel area
  ``[left-0.5, right-0.5] x [top-0.5, bottom-0.5]`` and their coordinates are then clamped into the kept pixel
  centres ``[left, right-1] x [top, bottom-1]`` (rasterisation-neutral), so a crop never changes which of the
  kept pixels an object covers for bitmaps, rectangles, points and axis-aligned shapes.
* Polygons may split into several polygons and lines into several lines; every piece keeps the label's class,
  tags and description. A geometry that leaves the window is dropped. A hole cut by the window stays a hole
  ring touching the border (it is not merged into the exterior), so it still clears the same pixels.

Functions never modify their inputs.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import math
from dataclasses import dataclass

import cv2
import numpy as np
from shapely.geometry import LineString
from shapely.geometry import Polygon as ShapelyPolygon
from shapely.geometry import box as shapely_box

from unetkit.project import (
    Annotation,
    Bitmap,
    Geometry,
    Label,
    Point,
    Polygon,
    Polyline,
    RawGeometry,
    Rectangle,
)
from unetkit.project.images import map_channels
from unetkit.project.limits import coordinate_problem

AXES = ("horizontal", "vertical")
ROTATE_MODES = ("keep", "crop", "preserve_size")
_EPS = 1e-9


# ----------------------------------------------------------------------------------------------- helpers


def _snap(a: np.ndarray) -> np.ndarray:
    """Remove float noise left by shapely / matrix products (1e-6 precision, exact multiples of 0.5)."""
    a = np.round(np.asarray(a, dtype=np.float64), 6) + 0.0  # 6 decimals; + 0.0 turns -0.0 into 0.0
    half = np.round(a * 2.0) / 2.0
    return np.where(np.abs(a - half) < _EPS, half, a)


def _bitmap_or_none(origin, mask) -> Bitmap | None:
    mask = np.asarray(mask, dtype=bool)
    if mask.size == 0 or not mask.any():
        return None
    return Bitmap((int(origin[0]), int(origin[1])), mask)


def _graph_nodes(g: RawGeometry) -> dict:
    nodes = g.payload.get("nodes")
    return nodes if isinstance(nodes, dict) else {}


def _map_graph(g: RawGeometry, fn, keep=lambda x, y: True) -> RawGeometry | None:
    """Apply ``fn(x, y) -> (x, y)`` to every node of a keypoint graph; nodes failing ``keep`` are removed."""
    payload = copy.deepcopy(g.payload)
    nodes = {}
    for node_id, node in _graph_nodes(g).items():
        loc = node.get("loc") if isinstance(node, dict) else None
        if not _valid_loc(loc):
            nodes[node_id] = copy.deepcopy(
                node
            )  # malformed: kept verbatim, as unetkit keeps what it cannot read
            continue
        x, y = fn(float(loc[0]), float(loc[1]))
        if keep(x, y):
            new = copy.deepcopy(node)
            new["loc"] = [_num(x), _num(y)]
            nodes[node_id] = new
    if not nodes:
        return None
    payload["nodes"] = nodes
    return RawGeometry(g.shape, payload)


def _valid_loc(loc) -> bool:
    """A node location ``[x, y]`` of two finite numbers within the coordinate range."""
    return (
        isinstance(loc, list)
        and len(loc) == 2
        and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and not coordinate_problem(c) for c in loc
        )
    )


def _num(v: float):
    v = float(v)
    return int(v) if v.is_integer() else v


class UntransformableGeometry(ValueError):
    """A geometry kept verbatim (cuboid_2d, alpha_mask, oriented_bbox, ...) that a transform cannot move."""


def _unsupported(g: Geometry, what: str) -> UntransformableGeometry:
    return UntransformableGeometry(f"cannot {what} a {g.name!r} geometry (kept verbatim, not interpreted)")


_DROPPED: contextvars.ContextVar[list | None] = contextvars.ContextVar("dropped_objects", default=None)


@contextlib.contextmanager
def collect_dropped():
    """Inside this block :func:`map_labels` drops an object it cannot transform (and lists it in the yielded
    list as ``(class title, shape)``) instead of raising UntransformableGeometry."""
    dropped: list = []
    token = _DROPPED.set(dropped)
    try:
        yield dropped
    finally:
        _DROPPED.reset(token)


def _relabel(label: Label, geometries: list[Geometry]) -> list[Label]:
    """One label per geometry; class, tags, description and extra fields are kept."""
    if len(geometries) == 1 and geometries[0] is label.geometry:
        return [label]
    return [label.clone(geometry=g) for g in geometries]


def integer_geometry(g: Geometry) -> Geometry:
    """``g`` with its coordinates rounded to the nearest integer (halves up), as the format stores them: the
    current SDK floors fractional coordinates when it rasterises, so transforms write integers."""
    if isinstance(g, Point):
        return Point(_nearest(g.x), _nearest(g.y))
    if isinstance(g, Rectangle):
        return Rectangle(_nearest(g.left), _nearest(g.top), _nearest(g.right), _nearest(g.bottom))
    if isinstance(g, Polygon):
        return Polygon(_nearest_array(g.exterior), [_nearest_array(r) for r in g.interiors])
    if isinstance(g, Polyline):
        return Polyline(_nearest_array(g.points))
    if isinstance(g, RawGeometry) and g.shape == "graph":
        return _map_graph(g, lambda x, y: (_nearest(x), _nearest(y))) or g
    return g


def _nearest(v: float) -> int:
    return int(math.floor(float(v) + 0.5))


def _nearest_array(a: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(a, dtype=np.float64) + 0.5)


def map_labels(ann: Annotation, fn, **changes) -> Annotation:
    """Annotation whose labels are replaced by ``fn(label.geometry) -> list[Geometry]`` (order kept), with
    integer coordinates."""
    labels: list[Label] = []
    dropped = _DROPPED.get()
    for label in ann.labels:
        try:
            geometries = fn(label.geometry)
        except UntransformableGeometry:
            if dropped is None:
                raise
            dropped.append((label.class_title, label.geometry.name))
            continue
        labels.extend(_relabel(label, [integer_geometry(g) for g in geometries]))
    return ann.clone(labels=labels, **changes)


# ----------------------------------------------------------------------------------------------- flip


def flip_image(img: np.ndarray, axis: str) -> np.ndarray:
    """ORIGINAL axis meaning: "horizontal" reverses the rows (upside down), "vertical" mirrors left-right."""
    if axis not in AXES:
        raise ValueError(f"unknown flip axis {axis!r}")
    out = img[::-1] if axis == "horizontal" else img[:, ::-1]
    return np.ascontiguousarray(out)


def flip_geometry(g: Geometry, axis: str, width: int, height: int) -> Geometry:
    """The geometry of an image of size (width, height) flipped like `flip_image`."""
    rows = axis == "horizontal"
    if axis not in AXES:
        raise ValueError(f"unknown flip axis {axis!r}")

    def fp(x, y):
        return (x, height - 1 - y) if rows else (width - 1 - x, y)

    def fa(a: np.ndarray) -> np.ndarray:
        a = np.array(a, dtype=np.float64)
        if rows:
            a[:, 1] = height - 1 - a[:, 1]
        else:
            a[:, 0] = width - 1 - a[:, 0]
        return a

    if isinstance(g, Bitmap):
        mh, mw = g.mask.shape
        x, y = g.origin
        if rows:
            return Bitmap((x, height - y - mh), g.mask[::-1])
        return Bitmap((width - x - mw, y), g.mask[:, ::-1])
    if isinstance(g, Rectangle):
        (x0, y0), (x1, y1) = fp(g.left, g.top), fp(g.right, g.bottom)
        return Rectangle(x0, y0, x1, y1)
    if isinstance(g, Polygon):
        return Polygon(fa(g.exterior), [fa(r) for r in g.interiors])
    if isinstance(g, Polyline):
        return Polyline(fa(g.points))
    if isinstance(g, Point):
        return Point(*fp(g.x, g.y))
    if isinstance(g, RawGeometry) and g.shape == "graph":
        return _map_graph(g, fp) or g
    raise _unsupported(g, "flip")


def flip_annotation(ann: Annotation, axis: str) -> Annotation:
    """`flip_geometry` applied to every label (axis with the ORIGINAL meaning, see `flip_image`)."""
    return map_labels(ann, lambda g: [flip_geometry(g, axis, ann.width, ann.height)])


# ----------------------------------------------------------------------------------------------- crop


def _clamp(a: np.ndarray, x0, y0, x1, y1) -> np.ndarray:
    a = _snap(a)
    return np.column_stack([np.clip(a[:, 0], x0, x1), np.clip(a[:, 1], y0, y1)])


def _shapely_parts(geom, kind: str) -> list:
    if geom.is_empty:
        return []
    if geom.geom_type == kind:
        return [geom]
    if geom.geom_type in ("Multi" + kind, "GeometryCollection"):
        out = []
        for part in geom.geoms:
            out.extend(_shapely_parts(part, kind))
        return out
    return []


def _inside(a: np.ndarray, x0, y0, x1, y1) -> bool:
    return bool(a[:, 0].min() >= x0 and a[:, 0].max() <= x1 and a[:, 1].min() >= y0 and a[:, 1].max() <= y1)


def _valid(shp):
    return shp if shp.is_valid else shp.buffer(0)


def _crop_polygon(g: Polygon, x0, y0, x1, y1) -> list[Geometry]:
    """Exterior and holes are clipped separately, so a hole cut open by the window stays a hole ring (it is
    then rasterised exactly like the uncut hole) instead of becoming a notch of the exterior."""
    if _inside(g.exterior, x0, y0, x1, y1):
        return [g]
    window = shapely_box(x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5)
    exterior = _valid(ShapelyPolygon(g.exterior))
    if not exterior.intersects(window):
        return []
    holes = []
    for ring in g.interiors:
        if len(ring) >= 3:
            holes.extend(_shapely_parts(_valid(ShapelyPolygon(ring)).intersection(window), "Polygon"))
    out: list[Geometry] = []
    for part in _shapely_parts(exterior.intersection(window), "Polygon"):
        ext = np.asarray(part.exterior.coords)[:-1]
        if len(ext) < 3:
            continue
        inner = [
            np.asarray(h.exterior.coords)[:-1] for h in holes if part.intersects(h.representative_point())
        ]
        inner += [np.asarray(h.coords)[:-1] for h in part.interiors]  # holes made by repairing the exterior
        out.append(
            Polygon(_clamp(ext, x0, y0, x1, y1), [_clamp(h, x0, y0, x1, y1) for h in inner if len(h) >= 3])
        )
    return out


def _crop_line(g: Polyline, x0, y0, x1, y1) -> list[Geometry]:
    if _inside(g.points, x0, y0, x1, y1):
        return [g]
    window = shapely_box(x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5)
    pieces = [
        np.asarray(p.coords) for p in _shapely_parts(LineString(g.points).intersection(window), "LineString")
    ]
    joined: list[np.ndarray] = []
    for piece in pieces:  # shapely may cut a line at its own vertices: re-join consecutive pieces
        if joined and np.array_equal(joined[-1][-1], piece[0]):
            joined[-1] = np.vstack([joined[-1], piece[1:]])
        else:
            joined.append(piece)
    return [Polyline(_clamp(p, x0, y0, x1, y1)) for p in joined if len(p) >= 2]


def crop_geometry(g: Geometry, left: int, top: int, right: int, bottom: int) -> list[Geometry]:
    """Parts of ``g`` inside the window (exclusive right/bottom), NOT shifted; [] when nothing is left."""
    x0, y0, x1, y1 = left, top, right - 1, bottom - 1
    if x1 < x0 or y1 < y0:
        return []
    if isinstance(g, Bitmap):
        x, y = g.origin
        mh, mw = g.mask.shape
        cx0, cy0, cx1, cy1 = max(x, left), max(y, top), min(x + mw, right), min(y + mh, bottom)
        if cx0 >= cx1 or cy0 >= cy1:
            return []
        if (cx0, cy0, cx1, cy1) == (x, y, x + mw, y + mh):
            return [g]
        b = _bitmap_or_none((cx0, cy0), g.mask[cy0 - y : cy1 - y, cx0 - x : cx1 - x])
        return [b] if b is not None else []
    if isinstance(g, Rectangle):
        box = (max(g.left, x0), max(g.top, y0), min(g.right, x1), min(g.bottom, y1))
        if box[0] > box[2] or box[1] > box[3]:
            return []
        if box == (g.left, g.top, g.right, g.bottom):
            return [g]
        return [Rectangle(*box)]
    if isinstance(g, Polygon):
        return _crop_polygon(g, x0, y0, x1, y1)
    if isinstance(g, Polyline):
        return _crop_line(g, x0, y0, x1, y1)
    if isinstance(g, Point):
        return [g] if (x0 <= round(g.x) <= x1 and y0 <= round(g.y) <= y1) else []
    if isinstance(g, RawGeometry) and g.shape == "graph":
        kept = _map_graph(
            g, lambda x, y: (x, y), keep=lambda x, y: x0 <= round(x) <= x1 and y0 <= round(y) <= y1
        )
        return [kept] if kept is not None else []
    raise _unsupported(g, "crop")


def crop_image(img: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """``img[top:bottom, left:right]`` (a copy)."""
    return np.ascontiguousarray(img[top:bottom, left:right])


def crop_annotation(
    ann: Annotation, left: int, top: int, right: int, bottom: int, *, shift: bool = True
) -> Annotation:
    """Crop every label to the window (exclusive right/bottom). With ``shift`` (the `crop` layer) the result is
    in the coordinates of the cropped image and has its size; without it (`crop_annotation` layer) only the
    labels are cut and the image size is unchanged."""

    def fn(g: Geometry) -> list[Geometry]:
        parts = crop_geometry(g, left, top, right, bottom)
        if not shift:
            return parts
        return [translate_geometry(p, -left, -top) for p in parts]

    if shift:
        return map_labels(ann, fn, width=int(right - left), height=int(bottom - top))
    return map_labels(ann, fn)


def translate_geometry(g: Geometry, dx, dy) -> Geometry:
    """``g`` moved by (dx, dy); keypoint graphs are supported too."""
    if isinstance(g, RawGeometry) and g.shape == "graph":
        return _map_graph(g, lambda x, y: (x + dx, y + dy)) or g
    if isinstance(g, RawGeometry):
        raise _unsupported(g, "move")
    return g.translate(dx, dy)


# ----------------------------------------------------------------------------------------------- resize


@dataclass(frozen=True)
class ResizeFrame:
    """How an image of ``src`` (w, h) becomes ``size`` (w, h): scaled to ``content`` (w, h), pasted at ``offset``."""

    src: tuple[int, int]
    size: tuple[int, int]
    content: tuple[int, int]
    offset: tuple[int, int]


def resize_frame(src_w: int, src_h: int, width: int, height: int, keep_aspect: bool = False) -> ResizeFrame:
    """Legacy `resize` sizes: -1 = derived from the other side (needs keep_aspect); keep_aspect with both sides
    scales by min(ratio) and centres the result on a black canvas of exactly width x height (letterbox)."""
    if width == 0 or height == 0 or (width < 0 and height < 0):
        raise ValueError(f"invalid target size {width}x{height}")
    if not keep_aspect:
        if width < 0 or height < 0:
            raise ValueError("a -1 side needs keep_aspect")
        return ResizeFrame((src_w, src_h), (width, height), (width, height), (0, 0))
    if height < 0:
        scale = width / src_w
        size = (width, max(1, int(round(src_h * scale))))
    elif width < 0:
        scale = height / src_h
        size = (max(1, int(round(src_w * scale))), height)
    else:
        scale = min(width / src_w, height / src_h)
        size = (width, height)
    content = (max(1, int(np.round(scale * src_w))), max(1, int(np.round(scale * src_h))))
    content = (min(content[0], size[0]), min(content[1], size[1]))
    offset = ((size[0] - content[0]) // 2, (size[1] - content[1]) // 2)
    return ResizeFrame((src_w, src_h), size, content, offset)


def resize_image(img: np.ndarray, plan: ResizeFrame) -> np.ndarray:
    """Bilinear resize to the plan's content size, pasted on a black canvas of the plan's size."""
    content = map_channels(lambda a: cv2.resize(a, plan.content, interpolation=cv2.INTER_LINEAR), img)
    if plan.content == plan.size:
        return content
    out = np.zeros((plan.size[1], plan.size[0]) + img.shape[2:], dtype=img.dtype)
    ox, oy = plan.offset
    out[oy : oy + plan.content[1], ox : ox + plan.content[0]] = content
    return out


def _nearest_src(i: np.ndarray, n_src: int, n_dst: int) -> np.ndarray:
    """Source index of destination pixel(s) ``i`` for pixel-centre nearest resampling (cv2 INTER_NEAREST_EXACT)."""
    return ((2 * i + 1) * n_src) // (2 * n_dst)


def _dst_range(lo: int, hi: int, n_src: int, n_dst: int) -> tuple[int, int] | None:
    """Inclusive range of destination pixels whose nearest source pixel lies in [lo, hi], or None."""
    i0 = -((n_src - 2 * n_dst * lo) // (2 * n_src))  # ceil((2*n_dst*lo - n_src) / (2*n_src))
    i1 = ((2 * n_dst * (hi + 1) - 1) // n_src - 1) // 2
    i0, i1 = max(i0, 0), min(i1, n_dst - 1)
    return (i0, i1) if i0 <= i1 else None


def _resize_points(a: np.ndarray, plan: ResizeFrame) -> np.ndarray:
    sx, sy = plan.content[0] / plan.src[0], plan.content[1] / plan.src[1]
    a = np.array(a, dtype=np.float64)
    a[:, 0] = (a[:, 0] + 0.5) * sx - 0.5 + plan.offset[0]
    a[:, 1] = (a[:, 1] + 0.5) * sy - 0.5 + plan.offset[1]
    return _snap(a)


def resize_geometry(g: Geometry, plan: ResizeFrame) -> list[Geometry]:
    """``g`` in the resized image. Bitmaps and rectangles are resampled like a nearest-neighbour resize of their
    mask (so they stay binary and exact); vector points map pixel centres to pixel centres."""
    (sw, sh), (cw, ch), (ox, oy) = plan.src, plan.content, plan.offset
    if isinstance(g, Bitmap):
        x, y = g.origin
        mh, mw = g.mask.shape
        rx = _dst_range(x, x + mw - 1, sw, cw)
        ry = _dst_range(y, y + mh - 1, sh, ch)
        if rx is None or ry is None:
            return []
        cols = _nearest_src(np.arange(rx[0], rx[1] + 1), sw, cw) - x
        rows = _nearest_src(np.arange(ry[0], ry[1] + 1), sh, ch) - y
        b = _bitmap_or_none((rx[0] + ox, ry[0] + oy), g.mask[np.ix_(rows, cols)])
        return [b] if b is not None else []
    if isinstance(g, Rectangle):
        rx = _dst_range(int(round(g.left)), int(round(g.right)), sw, cw)
        ry = _dst_range(int(round(g.top)), int(round(g.bottom)), sh, ch)
        if rx is None or ry is None:
            return []
        return [Rectangle(rx[0] + ox, ry[0] + oy, rx[1] + ox, ry[1] + oy)]
    if isinstance(g, Polygon):
        return [Polygon(_resize_points(g.exterior, plan), [_resize_points(r, plan) for r in g.interiors])]
    if isinstance(g, Polyline):
        return [Polyline(_resize_points(g.points, plan))]
    if isinstance(g, Point):
        (x, y) = _resize_points(np.array([[g.x, g.y]]), plan)[0]
        return [Point(float(x), float(y))]
    if isinstance(g, RawGeometry) and g.shape == "graph":

        def fp(x, y):
            p = _resize_points(np.array([[x, y]]), plan)[0]
            return float(p[0]), float(p[1])

        return [_map_graph(g, fp) or g]
    raise _unsupported(g, "resize")


def resize_annotation(
    ann: Annotation,
    width: int,
    height: int,
    *,
    keep_aspect: bool = False,
    classes=None,
    set_size: bool = True,
) -> Annotation:
    """Annotation of the image resized with `resize_frame(ann.width, ann.height, width, height, keep_aspect)`.
    ``classes``: only labels of these classes are resized. ``set_size=False`` keeps the annotation's size."""
    plan = resize_frame(ann.width, ann.height, width, height, keep_aspect)
    return resize_annotation_with(ann, plan, classes=classes, set_size=set_size)


def resize_annotation_with(
    ann: Annotation, plan: ResizeFrame, *, classes=None, set_size: bool = True
) -> Annotation:
    """`resize_annotation` with an explicit plan."""
    labels: list[Label] = []
    for label in ann.labels:
        if classes is not None and label.class_title not in classes:
            labels.append(label)
        else:
            labels.extend(_relabel(label, resize_geometry(label.geometry, plan)))
    if set_size:
        return ann.clone(labels=labels, width=plan.size[0], height=plan.size[1])
    return ann.clone(labels=labels)


# ----------------------------------------------------------------------------------------------- rotate


@dataclass(frozen=True)
class RotationFrame:
    """Rotation by ``angle`` degrees counter-clockwise about the image centre.

    ``matrix`` maps source pixel centres to the final image (canvas translation and crop included), ``size``
    is the final (w, h); ``window`` is the kept (left, top, right, bottom) part of the full rotated canvas."""

    angle: float
    src: tuple[int, int]
    canvas: tuple[int, int]
    window: tuple[int, int, int, int]
    matrix: np.ndarray
    size: tuple[int, int]

    @property
    def empty(self) -> bool:
        return self.size[0] <= 0 or self.size[1] <= 0


def largest_inner_rect(width: float, height: float, angle_deg: float) -> tuple[float, float]:
    """(w, h) of the largest axis-aligned rectangle inside a width x height rectangle rotated by angle_deg."""
    a = math.radians(angle_deg)
    sin_a, cos_a = abs(math.sin(a)), abs(math.cos(a))
    long_side, short_side = max(width, height), min(width, height)
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        half = 0.5 * short_side
        return (half / sin_a, half / cos_a) if width >= height else (half / cos_a, half / sin_a)
    cos_2a = cos_a * cos_a - sin_a * sin_a
    return (width * cos_a - height * sin_a) / cos_2a, (height * cos_a - width * sin_a) / cos_2a


def rotation_frame(width: int, height: int, angle_deg: float, mode: str) -> RotationFrame:
    """Rotation about the centre of the pixel grid ((w-1)/2, (h-1)/2), so 90/180 degree turns are exact; canvas =
    ceil of the rotated image's bounding box (the original's `ImageRotator`). ``mode``: "keep" the
    whole canvas, "crop" to the largest rectangle without black corners, or "preserve_size" (the original size,
    centred on the canvas, padded with black where the canvas is smaller)."""
    if mode not in ROTATE_MODES:
        raise ValueError(f"unknown rotate mode {mode!r}")
    m = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), float(angle_deg), 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    cw = int(math.ceil(width * c + height * s - 1e-6))
    ch = int(math.ceil(width * s + height * c - 1e-6))
    m[0, 2] += (cw - width) / 2.0
    m[1, 2] += (ch - height) / 2.0
    if mode == "keep":
        window = (0, 0, cw, ch)
    elif mode == "preserve_size":
        left = int(math.floor(cw / 2.0 - width / 2.0 + 0.5))
        top = int(math.floor(ch / 2.0 - height / 2.0 + 0.5))
        window = (left, top, left + width, top + height)
    else:
        wr, hr = largest_inner_rect(width, height, angle_deg)
        mx, my = m @ np.array([(width - 1) / 2.0, (height - 1) / 2.0, 1.0])
        left = max(0, math.ceil(mx - wr / 2.0 + 0.5 - 1e-6))
        top = max(0, math.ceil(my - hr / 2.0 + 0.5 - 1e-6))
        right = min(cw, math.floor(mx + wr / 2.0 - 0.5 + 1e-6) + 1)
        bottom = min(ch, math.floor(my + hr / 2.0 - 0.5 + 1e-6) + 1)
        window = (left, top, right, bottom)
    final = m.copy()
    final[0, 2] -= window[0]
    final[1, 2] -= window[1]
    size = (window[2] - window[0], window[3] - window[1])
    return RotationFrame(float(angle_deg), (width, height), (cw, ch), window, final, size)


def rotate_image(img: np.ndarray, plan: RotationFrame) -> np.ndarray:
    """The image rotated (Lanczos-4, black outside) into the plan's final size."""
    return map_channels(
        lambda a: cv2.warpAffine(a, plan.matrix, plan.size, flags=cv2.INTER_LANCZOS4, borderValue=0), img
    )


def _affine_points(a: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return _snap(a @ matrix[:, :2].T + matrix[:, 2])


def affine_geometry(g: Geometry, matrix: np.ndarray, width: int, height: int) -> list[Geometry]:
    """``g`` mapped by the 2x3 affine ``matrix`` into an image of (width, height); bitmaps are warped with
    nearest neighbour and cut to that image, rectangles become the pixel box of their rotated area."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if isinstance(g, Bitmap):
        x, y = g.origin
        mh, mw = g.mask.shape
        corners = np.array(
            [
                [x - 0.5, y - 0.5],
                [x + mw - 0.5, y - 0.5],
                [x - 0.5, y + mh - 0.5],
                [x + mw - 0.5, y + mh - 0.5],
            ]
        )
        pts = _affine_points(corners, matrix)
        x0, y0 = max(0, int(math.floor(pts[:, 0].min()))), max(0, int(math.floor(pts[:, 1].min())))
        x1, y1 = (
            min(width - 1, int(math.ceil(pts[:, 0].max()))),
            min(height - 1, int(math.ceil(pts[:, 1].max()))),
        )
        if x0 > x1 or y0 > y1:
            return []
        local = matrix.copy()
        local[:, 2] = matrix[:, :2] @ np.array([x, y], dtype=np.float64) + matrix[:, 2] - (x0, y0)
        warped = cv2.warpAffine(
            g.mask.astype(np.uint8), local, (x1 - x0 + 1, y1 - y0 + 1), flags=cv2.INTER_NEAREST
        )
        b = _bitmap_or_none((x0, y0), warped.astype(bool))
        return [b] if b is not None else []
    if isinstance(g, Rectangle):
        x0, y0, x1, y1 = g.left - 0.5, g.top - 0.5, g.right + 0.5, g.bottom + 0.5
        pts = _affine_points(np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]), matrix)
        nl, nt = math.ceil(pts[:, 0].min()), math.ceil(pts[:, 1].min())
        nr, nb = math.floor(pts[:, 0].max()), math.floor(pts[:, 1].max())
        return [Rectangle(nl, nt, max(nl, nr), max(nt, nb))]
    if isinstance(g, Polygon):
        return [Polygon(_affine_points(g.exterior, matrix), [_affine_points(r, matrix) for r in g.interiors])]
    if isinstance(g, Polyline):
        return [Polyline(_affine_points(g.points, matrix))]
    if isinstance(g, Point):
        (px, py) = _affine_points(np.array([[g.x, g.y]]), matrix)[0]
        return [Point(float(px), float(py))]
    if isinstance(g, RawGeometry) and g.shape == "graph":

        def fp(px, py):
            p = _affine_points(np.array([[px, py]]), matrix)[0]
            return float(p[0]), float(p[1])

        return [_map_graph(g, fp) or g]
    raise _unsupported(g, "rotate")


def rotate_annotation_with(ann: Annotation, plan: RotationFrame) -> Annotation:
    """Annotation of the image rotated by `rotate_image(img, plan)`; objects are cut to the final image
    except in "keep" mode (where the canvas holds every source pixel)."""
    w, h = plan.size
    cut = plan.window != (0, 0) + plan.canvas

    def fn(g: Geometry) -> list[Geometry]:
        out = affine_geometry(g, plan.matrix, w, h)
        if cut:
            out = [p for q in out for p in crop_geometry(q, 0, 0, w, h)]
        return out

    return map_labels(ann, fn, width=w, height=h)


def rotate_annotation(ann: Annotation, angle_deg: float, mode: str):
    """(rotated annotation or None when the crop is empty, final 2x3 affine matrix, final (w, h))."""
    plan = rotation_frame(ann.width, ann.height, angle_deg, mode)
    if plan.empty:
        return None, plan.matrix, plan.size
    return rotate_annotation_with(ann, plan), plan.matrix, plan.size


# ----------------------------------------------------------------------------------------------- normalise


def normalize_geometry(g: Geometry, width: int, height: int) -> list[Geometry]:
    """Normalisation to the image bounds (docs/original-behaviour.md, "DTL layers"): bitmaps cut and re-tightened,
    rectangles clipped to the image pixels, lines clipped (may split), points outside dropped, polygons with
    < 3 points (holes too) dropped."""
    if isinstance(g, (Bitmap, Rectangle, Polyline, Point)):
        if isinstance(g, Polyline) and len(g.points) < 2:
            return []
        return crop_geometry(g, 0, 0, width, height)
    if isinstance(g, Polygon):
        if len(g.exterior) < 3:
            return []
        holes = [r for r in g.interiors if len(r) >= 3]
        return [g] if len(holes) == len(g.interiors) else [Polygon(g.exterior, holes)]
    return [g]


def normalize_annotation(ann: Annotation) -> Annotation:
    """`normalize_geometry` applied to every label (used on read by `data` and before saving)."""
    return map_labels(ann, lambda g: normalize_geometry(g, ann.width, ann.height))


__all__ = [
    "AXES",
    "ROTATE_MODES",
    "ResizeFrame",
    "RotationFrame",
    "affine_geometry",
    "crop_annotation",
    "crop_geometry",
    "crop_image",
    "flip_annotation",
    "flip_geometry",
    "flip_image",
    "largest_inner_rect",
    "map_labels",
    "normalize_annotation",
    "normalize_geometry",
    "resize_frame",
    "rotation_frame",
    "resize_annotation",
    "resize_annotation_with",
    "resize_geometry",
    "resize_image",
    "rotate_annotation",
    "rotate_annotation_with",
    "rotate_image",
    "translate_geometry",
]
