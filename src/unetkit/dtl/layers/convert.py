"""Geometry conversion layers: bbox, bbox2poly, poly2bitmap, line2bitmap, rasterize, find_contours,
approx_vector, bitmap2lines, skeletonize, split_masks, drop_noise, bitwise_masks, merge_bitmap_masks,
generate_hints (docs/original-behaviour.md, "DTL layers"). Objects created from an object keep its tags and
description (the original lost them)."""

from __future__ import annotations

import re
from collections import deque
from typing import Literal

import cv2
import numpy as np
from pydantic import Field, field_validator

from unetkit.dtl.base import Layer, StrictSettings
from unetkit.dtl.geometry_ops import normalize_geometry
from unetkit.dtl.registry import register_layer
from unetkit.project import Bitmap, Geometry, Label, Point, Polygon, Polyline, Rectangle

EXAMPLE_SETTINGS: dict[str, dict] = {
    "bbox": {"classes_mapping": {"poly": "poly_box"}},
    "bbox2poly": {"classes_mapping": {"rect": "rect_poly"}},
    "poly2bitmap": {"classes_mapping": {"poly": "poly_mask"}},
    "line2bitmap": {"classes_mapping": {"line": "line_mask"}, "width": 3},
    "rasterize": {"classes_mapping": {"poly": "poly_r", "rect": "rect_r"}},
    "find_contours": {"classes_mapping": {"bitmap": "bitmap_poly"}, "approx_epsilon": 0.5},
    "approx_vector": {"classes": ["poly", "line"], "epsilon": 1.0},
    "bitmap2lines": {"classes_mapping": {"bitmap": "bitmap_lines"}, "min_points_cnt": 2},
    "skeletonize": {"classes": ["bitmap"], "method": "skeletonization"},
    "split_masks": {"classes": ["bitmap"]},
    "drop_noise": {"classes": ["bitmap"], "min_area": "2px", "src_type": "image"},
    "bitwise_masks": {"type": "or", "class_mask": "bitmap", "classes_to_correct": ["bitmap2"]},
    "merge_bitmap_masks": {"class": "bitmap"},
    "generate_hints": {
        "class": "bitmap",
        "positive_class": "pos",
        "negative_class": "neg",
        "min_points_number": 1,
    },
}


class MappingSettings(StrictSettings):
    classes_mapping: dict[str, str]


class MappingLayer(Layer):
    """A layer replacing objects of ``classes_mapping`` keys by objects of a new class of shape ``shape``."""

    Settings = MappingSettings
    mapping_setting = "classes_mapping"
    shape: str = ""

    def class_mapping(self, in_meta):
        m = {src: {"title": dst, "shape": self.shape} for src, dst in self.settings.classes_mapping.items()}
        return {"__other__": "__default__", **m}

    def convert(self, label: Label, new_title: str, ann) -> list[Geometry]:
        raise NotImplementedError

    def process(self, el, ctx):
        mapping, ann = self.settings.classes_mapping, el.ann
        labels: list[Label] = []
        for label in ann.labels:
            new_title = mapping.get(label.class_title)
            if new_title is None:
                labels.append(label)
                continue
            for g in self.convert(label, new_title, ann):
                labels.append(label.clone(class_title=new_title, geometry=g))
        yield 0, el.replace(ann=ann.clone(labels=labels))


def _require(label: Label, kind: type, action: str, what: str) -> None:
    if not isinstance(label.geometry, kind):
        raise ValueError(
            f"Input class must be a {what} in {action} layer: object of class {label.class_title!r} "
            f"is a {label.geometry.name}"
        )


def _bitmap_list(mask: np.ndarray, origin=(0, 0)) -> list[Geometry]:
    mask = np.asarray(mask, dtype=bool)
    return [Bitmap((int(origin[0]), int(origin[1])), mask)] if mask.any() else []


@register_layer
class BBoxLayer(MappingLayer):
    """Objects of mapped classes -> their bounding rectangle (pixel box, inclusive corners)."""

    action = "bbox"
    shape = "rectangle"

    def convert(self, label, new_title, ann):
        b = label.geometry.bbox()
        return normalize_geometry(Rectangle(b.left, b.top, b.right, b.bottom), ann.width, ann.height)


@register_layer
class BBoxToPolyLayer(MappingLayer):
    """Rectangles of mapped classes -> 4-point polygons (l,t), (l,b), (r,b), (r,t)."""

    action = "bbox2poly"
    shape = "polygon"

    def convert(self, label, new_title, ann):
        _require(label, Rectangle, self.action, "Rectangle")
        g = label.geometry
        return [Polygon([[g.left, g.top], [g.left, g.bottom], [g.right, g.bottom], [g.right, g.top]])]


@register_layer
class PolyToBitmapLayer(MappingLayer):
    """Any object of a mapped class -> bitmap of the pixels it rasterises to (the project's drawing rules)."""

    action = "poly2bitmap"
    shape = "bitmap"

    def convert(self, label, new_title, ann):
        return _bitmap_list(label.geometry.to_mask(ann.height, ann.width))


def draw_contour(g: Geometry, canvas: np.ndarray, thickness: int) -> None:
    """Draw the outline of ``g`` with 1s (legacy `draw_contour`): polylines for lines / polygons / rectangles,
    a filled circle of radius int((thickness+1)/2) for points, the mask contours for bitmaps."""
    if isinstance(g, Polyline):
        cv2.polylines(canvas, [np.round(g.points).astype(np.int32)], False, 1, thickness=thickness)
    elif isinstance(g, Polygon):
        rings = [np.round(r).astype(np.int32) for r in [g.exterior, *g.interiors]]
        cv2.polylines(canvas, rings, True, 1, thickness=thickness)
    elif isinstance(g, Rectangle):
        p1, p2 = (int(round(g.left)), int(round(g.top))), (int(round(g.right)), int(round(g.bottom)))
        cv2.rectangle(canvas, p1, p2, 1, thickness=thickness)
    elif isinstance(g, Point):
        center = (int(round(g.x)), int(round(g.y)))
        cv2.circle(canvas, center, int((thickness + 1) / 2), 1, thickness=cv2.FILLED)
    elif isinstance(g, Bitmap):
        contours, _ = cv2.findContours(g.mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(
            canvas, [c + np.array(g.origin, np.int32) for c in contours], -1, 1, thickness=thickness
        )
    else:
        raise ValueError(f"cannot draw the contour of a {g.name!r} geometry")


@register_layer
class LineToBitmapLayer(MappingLayer):
    """Objects of mapped classes -> bitmap of their outline drawn ``width`` pixels thick."""

    action = "line2bitmap"
    shape = "bitmap"

    class Settings(MappingSettings):
        width: int = Field(ge=1)

    def convert(self, label, new_title, ann):
        canvas = np.zeros((ann.height, ann.width), np.uint8)
        draw_contour(label.geometry, canvas, self.settings.width)
        return _bitmap_list(canvas)


@register_layer
class RasterizeLayer(Layer):
    """Draw the mapped objects in order into one instance map (later objects win) and emit one bitmap per
    surviving object after the unmapped objects: non-overlapping masks."""

    action = "rasterize"
    Settings = MappingSettings
    mapping_setting = "classes_mapping"

    def class_mapping(self, in_meta):
        m = {src: {"title": dst, "shape": "bitmap"} for src, dst in self.settings.classes_mapping.items()}
        return {"__other__": "__default__", **m}

    def process(self, el, ctx):
        mapping, ann = self.settings.classes_mapping, el.ann
        instances = np.zeros((ann.height, ann.width), np.int32)
        kept, drawn = [], []
        for label in ann.labels:
            if label.class_title in mapping:
                drawn.append(label)
                label.geometry.draw(instances, len(drawn))
            else:
                kept.append(label)
        for idx in np.unique(instances):
            if idx == 0:
                continue
            label = drawn[idx - 1]
            for g in _bitmap_list(instances == idx):
                kept.append(label.clone(class_title=mapping[label.class_title], geometry=g))
        yield 0, el.replace(ann=ann.clone(labels=kept))


def approx_ring(ring: np.ndarray, epsilon: float, closed: bool) -> np.ndarray:
    """Douglas-Peucker (cv2.approxPolyDP); a closed ring reduced below 3 points keeps its points."""
    new = cv2.approxPolyDP(np.asarray(ring, np.float32).reshape(-1, 1, 2), float(epsilon), closed)
    new = new.reshape(-1, 2).astype(np.float64)
    if closed and len(new) < 3:
        return np.asarray(ring, np.float64)
    return new


def approx_geometry(g: Geometry, epsilon: float) -> Geometry:
    if isinstance(g, Polygon):
        return Polygon(
            approx_ring(g.exterior, epsilon, True), [approx_ring(r, epsilon, True) for r in g.interiors]
        )
    if isinstance(g, Polyline):
        return Polyline(approx_ring(g.points, epsilon, False))
    raise ValueError(f"cannot approximate a {g.name!r} geometry")


def _ring3(contour: np.ndarray) -> np.ndarray:
    """An OpenCV contour as (N, 2) float points; 1-2 point contours (1-2 pixel parts) are padded to a degenerate
    3-point ring so they still rasterise to their pixels."""
    ring = contour.reshape(-1, 2).astype(np.float64)
    return ring if len(ring) >= 3 else np.vstack([ring, ring[-1:].repeat(3 - len(ring), axis=0)])


def mask_to_polygons(mask: np.ndarray, origin=(0, 0)) -> list[Polygon]:
    """Polygons (with holes) through the boundary pixel centres of every 8-connected part of ``mask``.

    Hole rings go through the hole's own pixels, so rasterising the polygons gives back the mask (tiny parts
    and holes become degenerate rings instead of being dropped)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, hier = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hier is None:
        return []
    hier = hier[0]
    shift = np.array(origin, dtype=np.float64)
    out = []
    for i, (_nxt, _prev, child, parent) in enumerate(hier):
        if parent >= 0:
            continue
        ext = _ring3(contours[i])
        holes = []
        while child >= 0:
            filled = np.zeros_like(m)
            cv2.drawContours(filled, contours, child, 1, thickness=cv2.FILLED)
            hole_px = (filled.astype(bool) & ~m.astype(bool)).astype(np.uint8)
            rings, _ = cv2.findContours(hole_px, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            holes.extend(_ring3(r) + shift for r in rings)
            child = hier[child][0]
        out.append(Polygon(ext + shift, holes))
    return out


@register_layer
class FindContoursLayer(MappingLayer):
    """Bitmaps of mapped classes -> polygons with holes (one per 8-connected part), optionally simplified."""

    action = "find_contours"
    shape = "polygon"

    class Settings(MappingSettings):
        approx_epsilon: float | None = Field(default=None, ge=0)

    def convert(self, label, new_title, ann):
        _require(label, Bitmap, self.action, "Bitmap")
        polys = mask_to_polygons(label.geometry.mask, label.geometry.origin)
        eps = self.settings.approx_epsilon
        return [approx_geometry(p, eps) for p in polys] if eps is not None else polys


@register_layer
class ApproxVectorLayer(Layer):
    """Douglas-Peucker simplification of polygons (closed) and lines (open) of ``classes``."""

    action = "approx_vector"
    mapping_setting = "classes"

    class Settings(StrictSettings):
        classes: list[str]
        epsilon: float = Field(gt=0)

    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        labels = []
        for label in ann.labels:
            if label.class_title in s.classes:
                if not isinstance(label.geometry, (Polygon, Polyline)):
                    raise ValueError(
                        f"Input class must be a Polygon or a Line in approx_vector layer: {label.class_title!r}"
                    )
                label = label.clone(geometry=approx_geometry(label.geometry, s.epsilon))
            labels.append(label)
        yield 0, el.replace(ann=ann.clone(labels=labels))


NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _farthest(adj: dict, start) -> tuple:
    """(farthest node, parent map) of a BFS from ``start`` over ``adj``."""
    parent = {start: None}
    queue, last = deque([start]), start
    while queue:
        last = queue.popleft()
        for nb in sorted(adj[last]):
            if nb not in parent:
                parent[nb] = last
                queue.append(nb)
    return last, parent


def _components(adj: dict) -> list[set]:
    seen, comps = set(), []
    for node in sorted(adj):
        if node in seen:
            continue
        _, parent = _farthest(adj, node)
        seen.update(parent)
        comps.append(set(parent))
    return comps


def mask_to_paths(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """Longest paths ("diameters") of a spanning forest of the 8-neighbour pixel graph of ``mask``: the longest
    path of each tree is taken, its edges removed, and the rest processed again; trees with < 3 edges are
    skipped. Paths are lists of (row, col)."""
    pixels = set(map(tuple, np.argwhere(mask)))
    graph = {
        p: [(p[0] + dr, p[1] + dc) for dr, dc in NEIGHBOURS if (p[0] + dr, p[1] + dc) in pixels]
        for p in pixels
    }
    tree: dict = {p: set() for p in pixels}
    for comp in _components(graph):  # BFS spanning tree of each component
        _, parent = _farthest(graph, min(comp))
        for child, par in parent.items():
            if par is not None:
                tree[child].add(par)
                tree[par].add(child)
    paths = []
    queue = deque(_components(tree))
    while queue:
        comp = queue.popleft()
        sub = {n: tree[n] & comp for n in comp}
        if sum(len(v) for v in sub.values()) // 2 < 3:
            continue
        a, _ = _farthest(sub, min(comp))
        b, parent = _farthest(sub, a)
        path = [b]
        while parent[path[-1]] is not None:
            path.append(parent[path[-1]])
        paths.append(path[::-1])
        for u, v in zip(path[:-1], path[1:]):
            tree[u].discard(v)
            tree[v].discard(u)
        rest = {n: tree[n] & comp for n in comp if tree[n] & comp}
        queue.extend(_components(rest))
    return paths


@register_layer
class BitmapToLinesLayer(MappingLayer):
    """Bitmaps (thin, e.g. skeletonised) of mapped classes -> lines along the longest pixel paths."""

    action = "bitmap2lines"
    shape = "line"

    class Settings(MappingSettings):
        min_points_cnt: int = Field(ge=2)
        approx_epsilon: float | None = Field(default=None, ge=0)

    def convert(self, label, new_title, ann):
        _require(label, Bitmap, self.action, "Bitmap")
        g, s = label.geometry, self.settings
        out: list[Geometry] = []
        for path in mask_to_paths(g.mask):
            if len(path) < s.min_points_cnt:
                continue
            pts = np.array(path, dtype=np.float64)[:, ::-1] + np.array(g.origin, dtype=np.float64)
            for line in normalize_geometry(Polyline(pts), ann.width, ann.height):
                out.append(approx_geometry(line, s.approx_epsilon) if s.approx_epsilon is not None else line)
        return out


class ClassesSettings(StrictSettings):
    classes: list[str]


class BitmapLayer(Layer):
    """A layer rewriting the bitmaps of ``classes`` (other shapes of those classes are an error)."""

    Settings = ClassesSettings
    mapping_setting = "classes"

    def convert(self, g: Bitmap, ann) -> list[Geometry]:
        raise NotImplementedError

    def process(self, el, ctx):
        ann = el.ann
        labels = []
        for label in ann.labels:
            if label.class_title not in self.settings.classes:
                labels.append(label)
                continue
            _require(label, Bitmap, self.action, "Bitmap")
            labels.extend(label.clone(geometry=g) for g in self.convert(label.geometry, ann))
        yield 0, el.replace(ann=ann.clone(labels=labels))


@register_layer
class SkeletonizeLayer(BitmapLayer):
    """Thin bitmaps of ``classes`` to 1-pixel skeletons (skimage skeletonize / medial_axis / thin)."""

    action = "skeletonize"

    class Settings(ClassesSettings):
        method: Literal["skeletonization", "medial_axis", "thinning"]

    def convert(self, g, ann):
        from skimage.morphology import medial_axis, skeletonize, thin

        fn = {"skeletonization": skeletonize, "medial_axis": medial_axis, "thinning": thin}[
            self.settings.method
        ]
        return _bitmap_list(fn(g.mask), g.origin)


@register_layer
class SplitMasksLayer(BitmapLayer):
    """One bitmap per 8-connected component of each bitmap of ``classes``."""

    action = "split_masks"

    def convert(self, g, ann):
        n, labels = cv2.connectedComponents(g.mask.astype(np.uint8), connectivity=8)
        return [Bitmap(g.origin, labels == i) for i in range(1, n)]


AREA_RE = re.compile(r"^(\d+(?:\.\d{1,2})?)%$|^(\d+)px$")


@register_layer
class DropNoiseLayer(BitmapLayer):
    """Remove 4-connected parts smaller than ``min_area`` ("<n>px", or "<p>%" of the image or of the object's
    box) from the bitmaps of ``classes`` (skimage remove_small_objects)."""

    action = "drop_noise"

    class Settings(ClassesSettings):
        min_area: str
        src_type: Literal["image", "bbox"]

        @field_validator("min_area")
        @classmethod
        def _area(cls, v):
            if not AREA_RE.match(v):
                raise ValueError(f'expected "<n>px" or "<p>%", got {v!r}')
            return v

    def convert(self, g, ann):
        s = self.settings
        percent, pixels = AREA_RE.match(s.min_area).groups()
        if pixels is not None:
            min_area = int(pixels)
        else:
            ref = ann.width * ann.height if s.src_type == "image" else g.mask.size
            min_area = int(ref * float(percent) / 100.0)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(g.mask.astype(np.uint8), connectivity=4)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
        small = small[small > 0]
        mask = g.mask & ~np.isin(labels, small)
        return _bitmap_list(mask, g.origin)


@register_layer
class BitwiseMasksLayer(Layer):
    """Replace each bitmap of ``classes_to_correct`` by op(mask, it) over the whole image, where mask is the
    first object of ``class_mask``. Fix: "nor" computes NOR (the original computed XOR)."""

    action = "bitwise_masks"
    mapping_setting = "classes_to_correct"

    class Settings(StrictSettings):
        type: Literal["or", "and", "nor"]
        class_mask: str
        classes_to_correct: list[str]

    OPS = {
        "or": np.logical_or,
        "and": np.logical_and,
        "nor": lambda a, b: ~np.logical_or(a, b),
    }

    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        mask_label = next((lb for lb in ann.labels if lb.class_title == s.class_mask), None)
        if mask_label is None:
            yield 0, el
            return
        _require(mask_label, Bitmap, self.action, "Bitmap")
        base = mask_label.geometry.full_mask(ann.height, ann.width)
        op = self.OPS[s.type]
        labels = []
        for label in ann.labels:
            if label.class_title not in s.classes_to_correct or label.class_title == s.class_mask:
                labels.append(label)
                continue
            _require(label, Bitmap, self.action, "Bitmap")
            new = op(base, label.geometry.full_mask(ann.height, ann.width))
            labels.extend(label.clone(geometry=g) for g in _bitmap_list(new))
        yield 0, el.replace(ann=ann.clone(labels=labels))


def _merge_tags(labels: list[Label]) -> list:
    tags = []
    for label in labels:
        for tag in label.tags:
            if not any(t.name == tag.name and t.value == tag.value for t in tags):
                tags.append(tag)
    return tags


@register_layer
class MergeBitmapMasksLayer(Layer):
    """Union of all bitmaps of ``class`` into one object, placed after the other objects (their tags merged)."""

    action = "merge_bitmap_masks"
    mapping_setting = "class"

    class Settings(StrictSettings):
        class_: str = Field(alias="class")

    def process(self, el, ctx):
        title, ann = self.settings.class_, el.ann
        others, merged = [], []
        for label in ann.labels:
            if label.class_title != title:
                others.append(label)
                continue
            _require(label, Bitmap, self.action, "Bitmap")
            merged.append(label)
        if len(merged) == 1:
            others.append(merged[0])
        elif merged:
            union = np.zeros((ann.height, ann.width), bool)
            for label in merged:
                label.geometry.draw(union, True)
            for g in _bitmap_list(union):
                others.append(merged[0].clone(geometry=g, tags=_merge_tags(merged)))
        yield 0, el.replace(ann=ann.clone(labels=others))


@register_layer
class GenerateHintsLayer(Layer):
    """Append random positive (inside the union of ``class``) and negative (outside) point objects; each count
    is int(Exponential(scale 2)) + min_points_number, capped by the available pixels."""

    action = "generate_hints"
    mapping_setting = "class"

    class Settings(StrictSettings):
        class_: str = Field(alias="class")
        positive_class: str
        negative_class: str
        min_points_number: int

    def validate(self):
        if self.settings.min_points_number < 0:
            raise self.error("min_points_number must not be less than zero", key="min_points_number")

    def class_mapping(self, in_meta):
        s = self.settings
        new = [{"title": s.positive_class, "shape": "point"}, {"title": s.negative_class, "shape": "point"}]
        return {"__other__": "__default__", "__new__": new}

    def process(self, el, ctx):
        s, ann, rng = self.settings, el.ann, ctx.rng
        mask = np.zeros((ann.height, ann.width), bool)
        for label in ann.labels:
            if label.class_title == s.class_:
                label.geometry.draw(mask, True)
        n_pos, n_neg = (int(rng.exponential(2.0)) + s.min_points_number for _ in range(2))
        labels = list(ann.labels)
        for title, region, n in ((s.positive_class, mask, n_pos), (s.negative_class, ~mask, n_neg)):
            pts = np.argwhere(region)[:, ::-1]
            n = min(n, len(pts))
            if n > 0:
                for x, y in pts[rng.choice(len(pts), n, replace=False)]:
                    labels.append(Label(class_title=title, geometry=Point(int(x), int(y))))
        yield 0, el.replace(ann=ann.clone(labels=labels))
