"""Domain-specific layers (2019+, roads and cracks): contour_sliding_box, drop_lines_by_length,
drop_lines_under_polygon, merge_lines, road_lines, find_cracknets.

The spec only sketches these; the rules below follow the original plugin's code where it works and say where
they differ (see docs/dtl_layers_transforms.md)."""

from __future__ import annotations

import math

import cv2
import numpy as np
from pydantic import Field, field_validator
from shapely.geometry import LineString
from shapely.geometry import Polygon as ShapelyPolygon

from unetkit.dtl.base import Layer, StrictSettings
from unetkit.dtl.geometry_ops import normalize_geometry
from unetkit.dtl.layers.convert import _merge_tags, _require
from unetkit.dtl.layers.geometry import parse_size
from unetkit.dtl.registry import register_layer
from unetkit.project import Label, Polygon, Polyline, Rectangle

EXAMPLE_SETTINGS: dict[str, dict] = {
    "contour_sliding_box": {
        "box": {"width": "4px", "height": "4px"},
        "distance": "5px",
        "classes": ["poly"],
        "box_class": "box",
    },
    "drop_lines_by_length": {"lines_class": "line", "min_length": 5},
    "drop_lines_under_polygon": {"lines_class": "line", "polygons_class": "poly"},
    "merge_lines": {
        "maximal_angle": 20,
        "max_ends_distance": "5px",
        "max_ortho_distance_coefficient": 0.5,
        "lines_class": "line",
    },
    "road_lines": {"road_class": "poly", "road_lines_class": "road_line"},
    "find_cracknets": {
        "crack_class": "line",
        "cracknet_class": "cracknet",
        "mask_resolution": 64,
        "loop_devide_eps": 2,
        "min_area_in_bbox_coef": 0.1,
        "min_poly_bbox_area_coef": 0.001,
        "enable_subclustering": False,
        "min_points_in_cluster": 3,
    },
}


def _size_field(value: str) -> str:
    parse_size(value, 1)
    return value


def _dist(p, q) -> float:
    return math.hypot(p[0] - q[0], p[1] - q[1])


def _path_length(points) -> float:
    return sum(_dist(points[i - 1], points[i]) for i in range(1, len(points)))


# ----------------------------------------------------------------------------------------------- boxes


class BoxSize(StrictSettings):
    width: str
    height: str

    @field_validator("width", "height")
    @classmethod
    def _size(cls, v):
        return _size_field(v)


def points_along(ring: np.ndarray, step: float):
    """Points every ``step`` (arc length) along the closed ring, starting ``step`` after its first vertex."""
    closed = np.vstack([ring, ring[:1]])
    seg = np.hypot(*np.diff(closed, axis=0).T)
    total = float(seg.sum())
    starts = np.concatenate([[0.0], np.cumsum(seg)])
    pos = step
    while pos <= total + 1e-9:
        i = min(int(np.searchsorted(starts, pos, side="right")) - 1, len(seg) - 1)
        t = 0.0 if seg[i] == 0 else (pos - starts[i]) / seg[i]
        yield closed[i] + t * (closed[i + 1] - closed[i])
        pos += step


@register_layer
class ContourSlidingBoxLayer(Layer):
    """Rectangles of ``box`` size (px or % of the image side) centred every ``distance`` (px or % of the shorter
    image side) along the exterior of each polygon of ``classes``, shifted inside the image; each polygon is
    followed by its boxes (new class ``box_class``, colour #00EE00)."""

    action = "contour_sliding_box"
    mapping_setting = "classes"

    class Settings(StrictSettings):
        box: BoxSize
        distance: str
        classes: list[str]
        box_class: str

        @field_validator("distance")
        @classmethod
        def _distance(cls, v):
            return _size_field(v)

    def class_mapping(self, in_meta):
        new = [{"title": self.settings.box_class, "shape": "rectangle", "color": "#00EE00"}]
        return {"__other__": "__default__", "__new__": new}

    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        bw, bh = parse_size(s.box.width, ann.width), parse_size(s.box.height, ann.height)
        step = parse_size(s.distance, min(ann.width, ann.height))
        if step <= 0 or bw <= 0 or bh <= 0:
            raise ValueError(f"contour_sliding_box: box {bw}x{bh} px and distance {step} px must be positive")
        labels = []
        for label in ann.labels:
            labels.append(label)
            if label.class_title not in s.classes:
                continue
            _require(label, Polygon, self.action, "Polygon")
            for x, y in points_along(label.geometry.exterior, step):
                left = min(max(int(round(x)) - bw // 2, 0), max(ann.width - bw, 0))
                top = min(max(int(round(y)) - bh // 2, 0), max(ann.height - bh, 0))
                box = Rectangle(left, top, min(left + bw, ann.width) - 1, min(top + bh, ann.height) - 1)
                labels.append(Label(class_title=s.box_class, geometry=box))
        yield 0, el.replace(ann=ann.clone(labels=labels))


# ----------------------------------------------------------------------------------------------- line filters


@register_layer
class DropLinesByLengthLayer(Layer):
    """Keep lines of ``lines_class`` whose length is within [min_length, max_length] (``invert``: the others);
    ``resolution_compensation`` scales both limits by image width / 1000."""

    action = "drop_lines_by_length"
    mapping_setting = "lines_class"

    class Settings(StrictSettings):
        lines_class: str = Field(min_length=1)
        min_length: float | None = Field(default=None, ge=0)
        max_length: float | None = Field(default=None, ge=0)
        invert: bool = False
        resolution_compensation: bool = False

    def validate(self):
        if self.settings.min_length is None and self.settings.max_length is None:
            raise self.error('"min_length" and/or "max_length" should be set', key="min_length")

    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        k = ann.width / 1000.0 if s.resolution_compensation else 1.0
        lo = None if s.min_length is None else s.min_length * k
        hi = None if s.max_length is None else s.max_length * k
        labels = []
        for label in ann.labels:
            if label.class_title == s.lines_class and isinstance(label.geometry, Polyline):
                length = _path_length(label.geometry.points)
                ok = (lo is None or length >= lo) and (hi is None or length <= hi)
                if ok == s.invert:
                    continue
            labels.append(label)
        yield 0, el.replace(ann=ann.clone(labels=labels))


def _shapely_polygon(g: Polygon):
    shp = ShapelyPolygon(g.exterior, [r for r in g.interiors if len(r) >= 3])
    return shp if shp.is_valid else shp.buffer(0)


def _line_parts(geom) -> list[np.ndarray]:
    if geom.is_empty:
        return []
    if geom.geom_type == "LineString":
        return [np.asarray(geom.coords)]
    if geom.geom_type in ("MultiLineString", "GeometryCollection"):
        return [p for part in geom.geoms for p in _line_parts(part)]
    return []


@register_layer
class DropLinesUnderPolygonLayer(Layer):
    """Cut away the parts of lines of ``lines_class`` that lie inside polygons of ``polygons_class``; the remaining
    pieces (tags kept) follow the other objects."""

    action = "drop_lines_under_polygon"
    mapping_setting = "lines_class"

    class Settings(StrictSettings):
        lines_class: str = Field(min_length=1)
        polygons_class: str = Field(min_length=1)

    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        lines, others = [], []
        for label in ann.labels:
            is_line = label.class_title == s.lines_class and isinstance(label.geometry, Polyline)
            (lines if is_line else others).append(label)
        polys = [
            _shapely_polygon(lb.geometry)
            for lb in others
            if lb.class_title == s.polygons_class and isinstance(lb.geometry, Polygon)
        ]
        for label in lines:
            geom = LineString(label.geometry.points)
            for poly in polys:
                geom = geom.difference(poly)
            for pts in _line_parts(geom):
                for g in normalize_geometry(Polyline(pts), ann.width, ann.height):
                    others.append(label.clone(geometry=g))
        yield 0, el.replace(ann=ann.clone(labels=others))


# ----------------------------------------------------------------------------------------------- merge_lines


def _angle(u, v) -> float:
    d = math.hypot(*u) * math.hypot(*v) or 0.0001
    return math.degrees(math.acos(min(max((u[0] * v[0] + u[1] * v[1]) / d, -1.0), 1.0)))


def _vec(p, q):
    return (q[0] - p[0], q[1] - p[1])


def _ortho(p, q, r) -> float:
    """Distance of r from the line through p and q (Heron's formula, as the original)."""
    a, b, c = _dist(p, q), _dist(p, r), _dist(r, q)
    s = (a + b + c) / 2
    return 2 * math.sqrt(abs(s * (s - a) * (s - b) * (s - c))) / (a or 0.001)


def try_merge(a: list, b: list, max_angle: float, max_ends: float, ortho_coef: float) -> list | None:
    """The merged point list of lines a and b when their nearest ends are close, the join continues both
    lines (no fold-back), the orthogonal offset is small and the angle small; else None."""
    ends = [(a[0], b[0]), (a[0], b[-1]), (a[-1], b[0]), (a[-1], b[-1])]
    dists = [_dist(p, q) for p, q in ends]
    kind = dists.index(min(dists))
    if dists[kind] > max_ends:
        return None
    # (end of a, its neighbour, end of b, its neighbour) at the junction
    a_end, a_in = (a[0], a[1]) if kind in (0, 1) else (a[-1], a[-2])
    b_end, b_in = (b[0], b[1]) if kind in (0, 2) else (b[-1], b[-2])
    if not (_dist(a_in, a_end) < _dist(a_in, b_end) and _dist(a_in, b_end) > _dist(a_end, b_end)):
        return None
    if _ortho(a_in, a_end, b_end) >= dists[kind] * ortho_coef:
        return None
    if _angle(_vec(a_in, a_end), _vec(b_end, b_in)) > max_angle:
        return None
    return {0: a[::-1] + b, 1: b + a, 2: a + b, 3: a + b[::-1]}[kind]


def merge_collinear(lines: list, max_angle: float, max_ends: float, ortho_coef: float) -> list:
    """Greedy merging of (points, labels) items as the original: the first line absorbs the first mergeable
    partner and is retried; a line without partners is final."""
    todo, done, nxt = list(lines), [], 1
    while todo:
        if len(todo) == 1:
            done.append(todo.pop())
            break
        merged = try_merge(todo[0][0], todo[nxt][0], max_angle, max_ends, ortho_coef)
        if merged is not None:
            new = (merged, todo[0][1] + todo[nxt][1])
            del todo[nxt], todo[0]
            todo.insert(0, new)
            nxt = 1
            continue
        nxt += 1
        if nxt == len(todo):
            done.append(todo.pop(0))
            nxt = 1
    return done


@register_layer
class MergeLinesLayer(Layer):
    """Join lines of ``lines_class`` that continue each other (ends within ``max_ends_distance`` px or % of the
    mean image side, angle <= ``maximal_angle``, small orthogonal offset); merged lines keep all tags and follow
    the other objects."""

    action = "merge_lines"
    mapping_setting = "lines_class"

    class Settings(StrictSettings):
        maximal_angle: float = Field(ge=0, le=180)
        max_ends_distance: str
        max_ortho_distance_coefficient: float = Field(ge=0)
        lines_class: str

        @field_validator("max_ends_distance")
        @classmethod
        def _ends(cls, v):
            return _size_field(v)

    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        v = s.max_ends_distance
        max_ends = float(v[:-2]) if v.endswith("px") else float(v[:-1]) / 100.0 * (ann.width + ann.height) / 2
        others, lines = [], []
        for label in ann.labels:
            if label.class_title == s.lines_class and isinstance(label.geometry, Polyline):
                lines.append((label.geometry.points.tolist(), [label]))
            else:
                others.append(label)
        for pts, group in merge_collinear(lines, s.maximal_angle, max_ends, s.max_ortho_distance_coefficient):
            label = group[0] if len(group) == 1 else group[0].clone(tags=_merge_tags(group))
            for g in normalize_geometry(Polyline(pts), ann.width, ann.height):
                others.append(label.clone(geometry=g))
        yield 0, el.replace(ann=ann.clone(labels=others))


# ----------------------------------------------------------------------------------------------- road_lines


def trapeze_sides(width: int, height: int, points: np.ndarray) -> list[list] | None:
    """Left and right road border lines of a road polygon (the original's convex-hull heuristic)."""
    hull = (
        cv2.convexHull(np.asarray(points, np.float32).astype(np.int32).reshape(-1, 1, 2))
        .reshape(-1, 2)
        .tolist()
    )
    if not hull:
        return None
    triangle = np.array([[width // 2, int(height // 1.75)], [0, 0], [width, 0]], np.int32).reshape(-1, 1, 2)

    def nearest(target):
        return min(hull, key=lambda p: _dist(p, target))

    left_bottom, right_bottom = nearest((-1000, height * 0.7)), nearest((width + 1000, height * 0.7))
    left_line, right_line = [], []
    if len(hull) > 7:
        step = 0
        for i, p in enumerate(hull):
            inside = cv2.pointPolygonTest(triangle, (float(p[0]), float(p[1])), False) >= 0
            mid = [(p[0] + hull[i - 1][0]) // 2, (p[1] + hull[i - 1][1]) // 2]
            if step == 0 and inside:
                left_line, step = [left_bottom, mid], 1
                continue
            if step == 1 and not inside:
                step = 2
            if step == 2 and not inside:
                right_line = [mid, right_bottom]
                break
    if not left_line:
        left_line = [nearest((-1000, -1000)), left_bottom]
    if not right_line:
        right_line = [nearest((width + 1000, -1000)), right_bottom]
    return [left_line, right_line]


@register_layer
class RoadLinesLayer(Layer):
    """For each road polygon whose box area >= min_road_area * width / 1000, add its left and right border lines
    (new line class ``road_lines_class``, colour #000088) right after it."""

    action = "road_lines"
    mapping_setting = "road_class"

    class Settings(StrictSettings):
        road_class: str = Field(min_length=1)
        road_lines_class: str = Field(min_length=1)
        min_road_area: float = Field(default=1, ge=1)

    def class_mapping(self, in_meta):
        new = [{"title": self.settings.road_lines_class, "shape": "line", "color": "#000088"}]
        return {"__other__": "__default__", "__new__": new}

    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        labels = []
        for label in ann.labels:
            labels.append(label)
            if label.class_title != s.road_class:
                continue
            _require(label, Polygon, self.action, "Polygon")
            ext = label.geometry.exterior
            area = float(np.ptp(ext[:, 0]) * np.ptp(ext[:, 1]))
            if area < s.min_road_area * ann.width / 1000.0:
                continue
            for side in trapeze_sides(ann.width, ann.height, ext) or []:
                for g in normalize_geometry(Polyline(np.asarray(side, np.float64)), ann.width, ann.height):
                    labels.append(Label(class_title=s.road_lines_class, geometry=g))
        yield 0, el.replace(ann=ann.clone(labels=labels))


# ----------------------------------------------------------------------------------------------- find_cracknets


def remove_loops(ring: list, eps: float) -> list[list]:
    """Split a closed ring where it comes back within ``eps`` of an earlier vertex (the original's rule)."""
    ring = [list(p) for p in ring]
    out, i = [], 0
    while i < len(ring):
        j = i + 1
        while j < len(ring):
            if _dist(ring[i], ring[j]) <= eps:
                piece = ring[i : j + 1]
                del ring[i:j]
                if len(piece) > 2:
                    out.append(piece)
                j = i
            j += 1
        i += 1
    if len(ring) > 2:
        out.append(ring)
    return out


def cracknet_polygons(width: int, height: int, lines: list[np.ndarray], s) -> list[np.ndarray]:
    """Polygons around dense groups of crack-line points, found on a coarse mask ``mask_resolution`` wide."""
    if not lines:
        return []
    tw = s.mask_resolution
    th = max(1, int(tw * height / width))
    kx, ky = tw / float(width), th / float(height)
    pts = np.vstack(lines) * (kx, ky)
    pts = np.clip(pts.astype(np.int64), 0, (tw - 1, th - 1)).astype(np.int32)
    drawn = np.zeros((th, tw), np.uint8)
    for x, y in pts:
        cv2.circle(drawn, (int(x), int(y)), 1, 255, -1)
    closed = cv2.morphologyEx(drawn, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    if s.enable_subclustering and len(pts) >= s.min_points_in_cluster:
        n, comp = cv2.connectedComponents(closed, connectivity=8)
        counts = np.bincount(comp[pts[:, 1], pts[:, 0]], minlength=n)
        masks = [
            (comp == i).astype(np.uint8) * 255 for i in range(1, n) if counts[i] >= s.min_points_in_cluster
        ]
    else:
        masks = [closed]
    out = []
    for mask in masks:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            for cluster in remove_loops(contour.reshape(-1, 2).tolist(), s.loop_devide_eps):
                c = np.asarray(cluster, np.float64)
                w, h = np.ptp(c[:, 0]), np.ptp(c[:, 1])
                if w == 0 or h == 0 or w / h > 8 or h / w > 8:
                    continue
                x, y = c[:, 0], c[:, 1]
                area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
                if (
                    area / (w * h) < s.min_area_in_bbox_coef
                    or w * h / float(tw * th) < s.min_poly_bbox_area_coef
                ):
                    continue
                c = (c / (kx, ky)).astype(np.int64)
                shp = ShapelyPolygon(c)
                if not shp.is_valid:
                    shp = shp.buffer(0)
                parts = list(shp.geoms) if shp.geom_type == "MultiPolygon" else [shp]
                out.extend(
                    np.asarray(p.exterior.coords)[:-1]
                    for p in parts
                    if p.geom_type == "Polygon" and not p.is_empty
                )
    return out


@register_layer
class FindCracknetsLayer(Layer):
    """Polygons (new class ``cracknet_class``) around networks of crack lines of ``crack_class``, appended after
    the other objects. Sub-clustering groups points by connected region of the coarse mask (the original used
    HDBSCAN); regions with fewer than ``min_points_in_cluster`` points are dropped."""

    action = "find_cracknets"
    mapping_setting = "crack_class"

    class Settings(StrictSettings):
        crack_class: str = Field(min_length=1)
        cracknet_class: str = Field(min_length=1)
        mask_resolution: int = Field(ge=1)
        loop_devide_eps: float = Field(ge=0.001)
        min_area_in_bbox_coef: float = Field(ge=0.00001)
        min_poly_bbox_area_coef: float = Field(ge=0.00001)
        enable_subclustering: bool
        min_points_in_cluster: int = Field(ge=1)

    def class_mapping(self, in_meta):
        return {
            "__other__": "__default__",
            "__new__": [{"title": self.settings.cracknet_class, "shape": "polygon"}],
        }

    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        lines = []
        for label in ann.labels:
            if label.class_title == s.crack_class:
                _require(label, Polyline, self.action, "Line")
                lines.append(label.geometry.points)
        labels = list(ann.labels)
        for ring in cracknet_polygons(ann.width, ann.height, lines, s):
            if len(ring) >= 3:
                labels.append(Label(class_title=s.cracknet_class, geometry=Polygon(ring)))
        yield 0, el.replace(ann=ann.clone(labels=labels))
