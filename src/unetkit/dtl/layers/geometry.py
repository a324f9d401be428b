"""Image + annotation geometry layers: flip, crop, crop_annotation, resize, rotate, sliding_window,
instances_crop, resize_annotation, restore_annotation_scale (docs/original-behaviour.md, "DTL layers").
Every transform moves the image and all
geometries together (see `unetkit.dtl.geometry_ops` for the pixel conventions)."""

from __future__ import annotations

import functools
import logging
import re
from typing import Literal

from pydantic import Field, field_validator

from unetkit.dtl import geometry_ops as ops
from unetkit.dtl.base import FreeSettings, Layer, StrictSettings
from unetkit.dtl.element import ImageRef
from unetkit.dtl.registry import register_layer

log = logging.getLogger(__name__)

EXAMPLE_SETTINGS: dict[str, dict] = {
    "flip": {"axis": "vertical"},
    "crop": {
        "random_part": {
            "height": {"min_percent": 50, "max_percent": 90},
            "width": {"min_percent": 50, "max_percent": 90},
        }
    },
    "crop_annotation": {"sides": {"left": "10%", "top": "2px"}},
    "resize": {"width": 24, "height": -1, "aspect_ratio": {"keep": True}},
    "rotate": {"rotate_angles": {"min_degrees": -30, "max_degrees": 30}, "black_regions": {"mode": "keep"}},
    "sliding_window": {"window": {"height": 8, "width": 8}, "min_overlap": {"x": 2, "y": 2}},
    "instances_crop": {"classes": ["poly"], "pad": {"sides": {"left": "2px", "right": "10%"}}},
    "resize_annotation": {"width": 10, "height": 10, "aspect_ratio": {"keep": False}},
    "restore_annotation_scale": {},
}

SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)(%|px)$")


def drops_untransformable(process):
    """Wrap a layer's ``process``: an object whose geometry the transform cannot move (cuboid_2d, alpha_mask,
    oriented_bbox, ...) is left out of the output and counted on it (``Element.dropped``, summed in the run
    report); the image and its other objects go on."""

    @functools.wraps(process)
    def wrapper(self, el, ctx):
        outputs = process(self, el, ctx)
        while True:
            with ops.collect_dropped() as dropped:
                try:
                    branch, out = next(outputs)
                except StopIteration:
                    return
            for title, shape in dropped:
                log.warning(
                    "%s: %s: left out a %r object of class %r", self.action, el.item_name, shape, title
                )
            yield branch, (out.replace(dropped=out.dropped + len(dropped)) if dropped else out)

    return wrapper


def parse_size(value: str, total: float) -> int:
    """ "<n>px" -> n; "<p>%" -> int(total * p / 100) (the legacy readers)."""
    m = SIZE_RE.match(value)
    if m is None:
        raise ValueError(f'expected "<n>px" or "<n>%", got {value!r}')
    number, unit = m.groups()
    if unit == "px":
        if "." in number:
            raise ValueError(f"pixel sizes must be integers, got {value!r}")
        return int(number)
    return int(total * float(number) / 100.0)


def _check_size(value: str | None) -> str | None:
    if value is not None:
        parse_size(value, 1)
    return value


class Sides(StrictSettings):
    """Side sizes: "<n>px" or "<n>%"; a missing side is 0."""

    left: str | None = None
    top: str | None = None
    right: str | None = None
    bottom: str | None = None

    @field_validator("left", "top", "right", "bottom")
    @classmethod
    def _valid_size(cls, value):
        return _check_size(value)

    def pixels(self, width: float, height: float) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in pixels; % of width for left/right, of height for top/bottom."""

        def get(v, total):
            return 0 if v is None else parse_size(v, total)

        return get(self.left, width), get(self.top, height), get(self.right, width), get(self.bottom, height)


class PercentRange(StrictSettings):
    min_percent: float = Field(ge=0, le=100)
    max_percent: float = Field(ge=0, le=100)


class RandomPart(StrictSettings):
    height: PercentRange
    width: PercentRange
    keep_aspect_ratio: bool = False


class CropSettings(StrictSettings):
    random_part: RandomPart | None = None
    sides: Sides | None = None


def _validate_crop(layer: Layer) -> None:
    s = layer.settings
    if (s.random_part is None) == (s.sides is None):
        raise layer.error('exactly one of "random_part" or "sides" is required', key="settings")
    rp = s.random_part
    if rp is not None:
        if rp.keep_aspect_ratio and rp.height != rp.width:
            raise layer.error(
                "When 'keep_aspect_ratio' is 'true', 'height' and 'width' should be equal.", key="random_part"
            )
        for side in ("height", "width"):
            r = getattr(rp, side)
            if r.min_percent > r.max_percent:
                raise layer.error(
                    f"'min_percent' should be <= than 'max_percent' for {side}", key=f"random_part.{side}"
                )


def crop_window(settings: CropSettings, width: int, height: int, rng) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), exclusive, of a `crop` layer for an image of (width, height)."""
    rp = settings.random_part
    if rp is None:
        left, top, right, bottom = settings.sides.pixels(width, height)
        return left, top, width - right, height - bottom

    def side(total: int, percent: float) -> tuple[int, int]:
        new = min(int(total), int(total * percent / 100.0))
        start = int(rng.integers(0, total - new + 1))
        return start, start + new

    p_w = rng.uniform(rp.width.min_percent, rp.width.max_percent)
    p_h = p_w if rp.keep_aspect_ratio else rng.uniform(rp.height.min_percent, rp.height.max_percent)
    left, right = side(width, p_w)
    top, bottom = side(height, p_h)
    return left, top, right, bottom


def _checked_window(layer: Layer, el, rng):
    ann = el.ann
    left, top, right, bottom = crop_window(layer.settings, ann.width, ann.height, rng)
    if right <= left or bottom <= top:
        log.warning("%s: empty crop for %s, element dropped", layer.action, el.item_name)
        return None
    if left < 0 or top < 0 or right > ann.width or bottom > ann.height:
        raise RuntimeError("Crop layer: result crop bounds are outside of source image.")
    return left, top, right, bottom


@register_layer
class FlipLayer(Layer):
    """Mirror image and annotation. ORIGINAL axis meaning (kept on purpose): "horizontal" turns the image
    upside down (rows reversed), "vertical" mirrors it left-right (columns reversed)."""

    action = "flip"

    class Settings(StrictSettings):
        axis: Literal["horizontal", "vertical"]

    @drops_untransformable
    def process(self, el, ctx):
        axis = self.settings.axis
        image = ImageRef.from_array(ops.flip_image(el.image.get(), axis))
        yield 0, el.replace(image=image, ann=ops.flip_annotation(el.ann, axis))


@register_layer
class CropLayer(Layer):
    """Crop image and annotation to fixed sides or a random part; an empty crop drops the element."""

    action = "crop"
    Settings = CropSettings

    def validate(self):
        _validate_crop(self)

    @drops_untransformable
    def process(self, el, ctx):
        window = _checked_window(self, el, ctx.rng)
        if window is not None:
            yield 0, self.cropped(el, window)

    def cropped(self, el, window):
        image = ImageRef.from_array(ops.crop_image(el.image.get(), *window))
        return el.replace(image=image, ann=ops.crop_annotation(el.ann, *window))


@register_layer
class CropAnnotationLayer(CropLayer):
    """Like `crop` but only cuts the objects (no shift); the image and its size are untouched."""

    action = "crop_annotation"

    def cropped(self, el, window):
        return el.replace(ann=ops.crop_annotation(el.ann, *window, shift=False))


class KeepAspect(StrictSettings):
    keep: bool


class ResizeSettings(StrictSettings):
    width: int = Field(ge=-1)
    height: int = Field(ge=-1)
    aspect_ratio: KeepAspect


@register_layer
class ResizeLayer(Layer):
    """Resize to width x height (bilinear image, exact nearest masks); -1 keeps the aspect from the other side;
    keep=true with both sides letterboxes onto a black canvas."""

    action = "resize"
    Settings = ResizeSettings

    def validate(self):
        s = self.settings
        if s.width == 0 or s.height == 0:
            raise self.error(
                '"height" and "width" should be != 0.', key="width" if s.width == 0 else "height"
            )
        if s.width == -1 and s.height == -1:
            raise self.error('"height" and "width" cannot be both set to -1.', key="width")
        if (s.width == -1 or s.height == -1) and not s.aspect_ratio.keep:
            raise self.error(
                '"keep" "aspect_ratio" should be set to "true" when "width" or "height" is -1.',
                key="aspect_ratio.keep",
            )

    def frame(self, ann):
        s = self.settings
        return ops.resize_frame(ann.width, ann.height, s.width, s.height, s.aspect_ratio.keep)

    @drops_untransformable
    def process(self, el, ctx):
        plan = self.frame(el.ann)
        image = ImageRef.from_array(ops.resize_image(el.image.get(), plan))
        yield 0, el.replace(image=image, ann=ops.resize_annotation_with(el.ann, plan))


class AngleRange(StrictSettings):
    min_degrees: float
    max_degrees: float


class BlackRegions(StrictSettings):
    mode: Literal["keep", "crop", "preserve_size"]


@register_layer
class RotateLayer(Layer):
    """Rotate by a random angle in [min, max] degrees counter-clockwise; black corners kept, cropped away or
    the original size preserved."""

    action = "rotate"

    class Settings(StrictSettings):
        rotate_angles: AngleRange
        black_regions: BlackRegions

    def validate(self):
        r = self.settings.rotate_angles
        if r.min_degrees > r.max_degrees:
            raise self.error('"min_degrees" should be <= "max_degrees"', key="rotate_angles")

    @drops_untransformable
    def process(self, el, ctx):
        r, ann = self.settings.rotate_angles, el.ann
        angle = float(ctx.rng.uniform(r.min_degrees, r.max_degrees))
        plan = ops.rotation_frame(ann.width, ann.height, angle, self.settings.black_regions.mode)
        if plan.empty:
            log.warning("rotate: empty crop for %s, element dropped", el.item_name)
            return
        image = ImageRef.from_array(ops.rotate_image(el.image.get(), plan))
        yield 0, el.replace(image=image, ann=ops.rotate_annotation_with(ann, plan))


class WindowSize(StrictSettings):
    height: int = Field(ge=1)
    width: int = Field(ge=1)


class Overlap(StrictSettings):
    x: int = Field(ge=0)
    y: int = Field(ge=0)


def sliding_windows(width: int, height: int, win_w: int, win_h: int, step_x: int, step_y: int):
    """Row-major (left, top, right, bottom) windows; the last row/column is clamped to the image edge."""
    if win_w > width or win_h > height:
        raise RuntimeError("Sliding window: window is larger than source (image).")
    lim_x, lim_y = width - win_w, height - win_h
    for top in range(0, lim_y + step_y, step_y):
        for left in range(0, lim_x + step_x, step_x):
            x, y = min(left, lim_x), min(top, lim_y)
            yield x, y, x + win_w, y + win_h


@register_layer
class SlidingWindowLayer(Layer):
    """One output per window of a row-major grid (image crop + cropped, shifted annotation)."""

    action = "sliding_window"

    class Settings(StrictSettings):
        window: WindowSize
        min_overlap: Overlap

    def validate(self):
        s = self.settings
        if s.window.width - s.min_overlap.x < 1 or s.window.height - s.min_overlap.y < 1:
            raise self.error("Wrong sliding window settings, overlap is too high.", key="min_overlap")

    @drops_untransformable
    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        img = el.image.get()
        step_x, step_y = s.window.width - s.min_overlap.x, s.window.height - s.min_overlap.y
        for window in sliding_windows(ann.width, ann.height, s.window.width, s.window.height, step_x, step_y):
            image = ImageRef.from_array(ops.crop_image(img, *window))
            yield 0, el.replace(image=image, ann=ops.crop_annotation(ann, *window))


class Pad(StrictSettings):
    sides: Sides


@register_layer
class InstancesCropLayer(Layer):
    """One output per object of ``classes``: its padded box cut from the image, keeping that object and the
    objects of ``save_classes``; all other classes leave the meta."""

    action = "instances_crop"
    mapping_setting = "classes"

    class Settings(StrictSettings):
        classes: list[str]
        save_classes: list[str] = []
        pad: Pad

    def validate(self):
        s = self.settings
        if not s.classes:
            raise self.error("classes array can not be empty", key="classes")
        common = set(s.classes) & set(s.save_classes)
        if common:
            raise self.error(
                f"classes and save_classes must not intersect: {sorted(common)}", key="save_classes"
            )

    def class_mapping(self, in_meta):
        s = self.settings
        return {"__other__": "__ignore__", **dict.fromkeys(s.save_classes + s.classes, "__default__")}

    @drops_untransformable
    def process(self, el, ctx):
        s, ann = self.settings, el.ann
        keep = set(s.save_classes)
        img = None
        for idx, label in enumerate(ann.labels):
            if label.class_title not in s.classes:
                continue
            box = label.geometry.bbox()
            left, top = int(round(box.left)), int(round(box.top))
            right, bottom = int(round(box.right)) + 1, int(round(box.bottom)) + 1
            pl, pt, pr, pb = s.pad.sides.pixels(right - left, bottom - top)
            window = (
                max(left - pl, 0),
                max(top - pt, 0),
                min(right + pr, ann.width),
                min(bottom + pb, ann.height),
            )
            if window[2] <= window[0] or window[3] <= window[1]:
                continue
            if img is None:
                img = el.image.get()
            kept = [lb for i, lb in enumerate(ann.labels) if i == idx or lb.class_title in keep]
            new_ann = ops.crop_annotation(ann.clone(labels=kept), *window)
            yield 0, el.replace(image=ImageRef.from_array(ops.crop_image(img, *window)), ann=new_ann)


ANN_SIZE_KEY = "ann_size_wh"


@register_layer
class ResizeAnnotationLayer(ResizeLayer):
    """Resize only the objects (optionally only ``classes``) as `resize` would, and remember the target size
    under the annotation key ``ann_size_wh`` for `restore_annotation_scale`."""

    action = "resize_annotation"

    class Settings(ResizeSettings):
        classes: list[str] | None = None

    @drops_untransformable
    def process(self, el, ctx):
        ann = el.ann
        plan = self.frame(ann)
        new_ann = ops.resize_annotation_with(ann, plan, classes=self.settings.classes, set_size=False)
        new_ann.extra = {**ann.extra, ANN_SIZE_KEY: [plan.size[0], plan.size[1]]}
        yield 0, el.replace(ann=new_ann)


@register_layer
class RestoreAnnotationScaleLayer(Layer):
    """Map objects resized by `resize_annotation` (size in ``ann_size_wh``) back to the image size."""

    action = "restore_annotation_scale"

    class Settings(FreeSettings):
        classes: list[str] | None = None

    @drops_untransformable
    def process(self, el, ctx):
        ann = el.ann
        size = ann.extra.get(ANN_SIZE_KEY)
        if size is None:
            yield 0, el
            return
        if not (
            isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
        ):
            raise ValueError(f"annotation key {ANN_SIZE_KEY!r} must be [width, height], got {size!r}")
        plan = ops.resize_frame(size[0], size[1], ann.width, ann.height, False)
        new_ann = ops.resize_annotation_with(ann, plan, classes=self.settings.classes, set_size=False)
        new_ann.extra = {k: v for k, v in ann.extra.items() if k != ANN_SIZE_KEY}
        yield 0, el.replace(ann=new_ann)
