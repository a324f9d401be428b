"""Annotation -> class-index mask, colour overlays for people to look at."""

from __future__ import annotations

import numpy as np

from unetkit.errors import FormatError
from unetkit.project.annotation import Annotation
from unetkit.project.images import display_rgb
from unetkit.project.meta import ProjectMeta, color_to_rgb


def rasterize(
    ann: Annotation,
    class_to_index: dict[str, int],
    *,
    default=0,
    dtype=np.int32,
    skip_unknown=False,
    file=None,
) -> np.ndarray:
    """Draw every object with its class index into an (H, W) map filled with ``default``.

    Objects are drawn in list order, so later objects win (docs/original-behaviour.md, "Rasterisation").
    An object whose class is missing from ``class_to_index`` raises FormatError unless ``skip_unknown``.
    """
    canvas = np.full((ann.height, ann.width), default, dtype=dtype)
    for i, label in enumerate(ann.labels):
        idx = class_to_index.get(label.class_title)
        if idx is None:
            if skip_unknown:
                continue
            raise FormatError(
                f"missing class mapping (title to index) for class {label.class_title!r}",
                file=file,
                json_path=f"$.objects[{i}].classTitle",
            )
        try:
            label.geometry.draw(canvas, idx)
        except ValueError as exc:
            raise FormatError(str(exc), file=file, json_path=f"$.objects[{i}]") from None
    return canvas


def rasterize_labelsets(
    ann: Annotation, class_to_bit: dict[str, int], *, skip_unknown=False, file=None
) -> np.ndarray:
    """Overlapping classes: an (H, W) int32 map with bit ``class_to_bit[title]`` set on every pixel an object of that
    title covers (bits 0–30; a negative value: the title's objects draw nothing). Each object is drawn on its own,
    so overlaps are kept; an object whose title is missing is a FormatError unless ``skip_unknown``."""
    canvas = np.zeros((ann.height, ann.width), dtype=np.int32)
    for i, label in enumerate(ann.labels):
        bit = class_to_bit.get(label.class_title)
        if bit is None and not skip_unknown:
            raise FormatError(
                f"Missing class mapping (title to index). Class {label.class_title}.",
                file=file,
                json_path=f"$.objects[{i}].classTitle",
            )
        if bit is None or bit < 0:
            continue
        try:
            covered = label.geometry.to_mask(ann.height, ann.width)
        except ValueError as exc:
            raise FormatError(str(exc), file=file, json_path=f"$.objects[{i}]") from None
        canvas[covered] |= np.int32(1 << bit)
    return canvas


DRAWABLE_SHAPES = ("point", "rectangle", "polygon", "line", "bitmap")


def first_undrawable_object(project) -> FormatError | None:
    """The first object of ``project`` that cannot be rasterised (a class of shape graph, cuboid, ... or an
    ``any`` class's object of such a geometry), as a FormatError naming its file and JSON path; None when there
    is none. Only annotations are read, and only when the meta has such a class."""
    from unetkit.project.io import load_json

    odd = {c.title: c.shape for c in project.meta.classes if c.shape not in DRAWABLE_SHAPES}
    if not odd:
        return None
    for item in project.items():
        objects = load_json(item.ann_path).get("objects")
        for i, obj in enumerate(objects if isinstance(objects, list) else []):
            shape = odd.get(obj.get("classTitle")) if isinstance(obj, dict) else None
            if shape == "any":
                shape = obj.get("geometryType") or obj.get("shape")
            if isinstance(shape, str) and shape not in DRAWABLE_SHAPES:
                return FormatError(
                    f"class {obj['classTitle']!r}: a {shape!r} object cannot be rasterised into a mask; leave "
                    "the class out (e.g. DTL drop_obj_by_class) or convert its objects",
                    file=item.ann_path,
                    json_path=f"$.objects[{i}]",
                )
    return None


def colorize_index_mask(mask: np.ndarray, palette: dict) -> np.ndarray:
    """(H, W) integer mask -> (H, W, 3) uint8 RGB; indices missing from ``palette`` are black."""
    out = np.zeros(mask.shape + (3,), dtype=np.uint8)
    for idx, rgb in palette.items():
        out[mask == idx] = rgb
    return out


def render_overlay(image: np.ndarray, ann: Annotation, meta: ProjectMeta, alpha=0.5) -> np.ndarray:
    """Blend every object in its class colour over ``image`` (any pixels, shown with :func:`display_rgb`); objects
    drawn in order.

    Geometries that cannot be drawn (unknown shapes) are left out of the picture.
    """
    image = display_rgb(image)
    h, w = image.shape[:2]
    drawing = np.zeros((h, w, 3), dtype=np.uint8)
    covered = np.zeros((h, w), dtype=bool)
    for label in ann.labels:
        obj_class = meta.get_class(label.class_title)
        rgb = color_to_rgb(obj_class.color) if obj_class else (255, 0, 0)
        try:
            mask = label.geometry.to_mask(h, w)
        except ValueError:
            continue
        drawing[mask] = rgb
        covered |= mask
    out = image.copy()
    blended = image.astype(np.float32) * (1 - alpha) + drawing.astype(np.float32) * alpha
    out[covered] = np.clip(np.round(blended[covered]), 0, 255).astype(np.uint8)
    return out
