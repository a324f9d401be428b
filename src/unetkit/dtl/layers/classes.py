"""Class / object manipulation layers: rename, drop_obj_by_class, duplicate_objects, color_class,
background, tag, objects_filter."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from unetkit.dtl.base import Layer, StrictSettings
from unetkit.dtl.class_mapping import map_labels
from unetkit.dtl.registry import register_layer
from unetkit.project import Bitmap, Label, Rectangle, Tag

EXAMPLE_SETTINGS = {
    "rename": {"classes_mapping": {"poly": "poly_renamed"}},
    "drop_obj_by_class": {"classes": ["line"]},
    "duplicate_objects": {"classes_mapping": {"bitmap": "bitmap_copy"}},
    "color_class": {"classes_color_mapping": {"rect": "#123456"}},
    "background": {"class": "bg"},
    "tag": {"tag": {"name": "split", "value": "train"}, "action": "add"},
    "objects_filter": {
        "filter_by": {
            "polygon_sizes": {
                "filtering_classes": ["poly"],
                "area_size": {"percent": 1},
                "action": "delete",
                "comparator": "less",
            }
        }
    },
}

COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")


def legacy_area(geometry) -> float:
    """Figure area as legacy DTL computes it (docs/original-behaviour.md, "DTL layers"): polygon = shoelace of the
    exterior only, bitmap = pixel count, rectangle = box area, line / point = 0."""
    name = geometry.name
    if name == "polygon":
        ring = geometry.exterior
        x, y = ring[:, 0], ring[:, 1]
        return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    if name in ("bitmap", "rectangle"):
        return float(geometry.area())
    return 0.0


def legacy_size(geometry) -> tuple[float, float]:
    """(width, height) of a figure's legacy bbox: pixel extent for bitmaps, max - min of the points else."""
    if isinstance(geometry, Bitmap):
        return float(geometry.mask.shape[1]), float(geometry.mask.shape[0])
    if isinstance(geometry, Rectangle):
        return float(geometry.right - geometry.left), float(geometry.bottom - geometry.top)
    box = geometry.bbox()
    return float(box.right - box.left), float(box.bottom - box.top)


class MappingSettings(StrictSettings):
    classes_mapping: dict[str, str]


@register_layer
class RenameLayer(Layer):
    """Rename, keep (`__default__`) or drop (`__ignore__`) classes; unlisted classes are kept."""

    action = "rename"
    Settings = MappingSettings
    mapping_setting = "classes_mapping"

    def class_mapping(self, in_meta):
        return {"__other__": "__default__", **self.settings.classes_mapping}

    def process(self, el, ctx):
        yield 0, el.replace(ann=map_labels(el.ann, self.label_map))


class ClassesSettings(StrictSettings):
    classes: list[str]


@register_layer
class DropObjByClassLayer(RenameLayer):
    """Delete the objects of the listed classes (and the classes from the meta): a rename to `__ignore__`."""

    action = "drop_obj_by_class"
    Settings = ClassesSettings
    mapping_setting = "classes"

    def class_mapping(self, in_meta):
        return {"__other__": "__default__", **dict.fromkeys(self.settings.classes, "__ignore__")}


@register_layer
class DuplicateObjectsLayer(Layer):
    """Each object of a mapped class is kept and a copy of class ``classes_mapping[cls]`` follows it."""

    action = "duplicate_objects"
    Settings = MappingSettings
    mapping_setting = "classes_mapping"

    def class_mapping(self, in_meta):
        return {"__other__": "__default__", "__clone__": dict(self.settings.classes_mapping)}

    def process(self, el, ctx):
        mapping = self.settings.classes_mapping
        labels = []
        for label in el.ann.labels:
            labels.append(label)
            if label.class_title in mapping:
                labels.append(label.clone(class_title=mapping[label.class_title], tags=list(label.tags)))
        yield 0, el.replace(ann=el.ann.clone(labels=labels))


class ColorSettings(StrictSettings):
    classes_color_mapping: dict[str, str]


@register_layer
class ColorClassLayer(Layer):
    """Change class colours in the output meta; objects are untouched."""

    action = "color_class"
    Settings = ColorSettings
    mapping_setting = "classes_color_mapping"

    def validate(self):
        for title, color in self.settings.classes_color_mapping.items():
            if not COLOR_RE.match(color):
                raise self.error(
                    f"colour of {title!r} must be '#RRGGBB', got {color!r}",
                    key=f"classes_color_mapping.{title}",
                )

    def class_mapping(self, in_meta):
        update = {t: {"color": c.upper()} for t, c in self.settings.classes_color_mapping.items()}
        return {"__other__": "__default__", "__update__": update}

    def process(self, el, ctx):
        yield 0, el


class BackgroundSettings(StrictSettings):
    class_: str = Field(alias="class", min_length=1)


@register_layer
class BackgroundLayer(Layer):
    """Insert a full-image rectangle of class ``class`` as the first (bottom-most) object."""

    action = "background"
    Settings = BackgroundSettings
    mapping_setting = "class"

    def class_mapping(self, in_meta):
        return {
            "__other__": "__default__",
            "__new__": [{"title": self.settings.class_, "shape": "rectangle"}],
        }

    def process(self, el, ctx):
        ann = el.ann
        bg = Label(class_title=self.settings.class_, geometry=Rectangle(0, 0, ann.width - 1, ann.height - 1))
        yield 0, el.replace(ann=ann.clone(labels=[bg, *ann.labels]))


class TagValue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    value: str | int | float | None = None


class TagSettings(StrictSettings):
    tag: str | TagValue
    action: Literal["add", "delete"]


@register_layer
class TagLayer(Layer):
    """Add an image tag (if absent) or delete every image tag of that name.

    Fix: adding a tag whose name and value are already present succeeds (the original raised)."""

    action = "tag"
    Settings = TagSettings
    mapping_setting = "tag"

    @property
    def tag_name(self) -> str:
        tag = self.settings.tag
        return tag if isinstance(tag, str) else tag.name

    @property
    def tag_value(self):
        tag = self.settings.tag
        return None if isinstance(tag, str) else tag.value

    def validate(self):
        if self.tag_name == "":
            raise self.error("tag name must not be empty", key="tag")
        if self.settings.action == "delete" and self.tag_value is not None:
            raise self.error("deleting a tag does not take a value", key="tag.value")

    def tag_changes(self):
        if self.settings.action == "delete":
            return [], [self.tag_name]
        tag = self.settings.tag
        return [tag if isinstance(tag, str) else {"name": tag.name, "value": tag.value}], []

    def process(self, el, ctx):
        name, value = self.tag_name, self.tag_value
        tags = el.ann.tags
        if self.settings.action == "delete":
            yield 0, el.replace(ann=el.ann.clone(tags=[t for t in tags if t.name != name]))
            return
        same = [t for t in tags if t.name == name]
        if not same:
            yield 0, el.replace(ann=el.ann.clone(tags=[*tags, Tag(name=name, value=value)]))
            return
        if value is not None and all(t.value != value for t in same):
            raise ValueError(
                f"Trying to add tag value, but a tag with the same name and conflicting value exists: "
                f"{name}={same[0].value!r} (new value {value!r})"
            )
        yield 0, el


class AreaPercent(StrictSettings):
    percent: float = Field(ge=0, le=100)


class AreaSize(StrictSettings):
    width: int = Field(ge=0)
    height: int = Field(ge=0)


class RemapClass(StrictSettings):
    remap_class: str


class PolygonSizes(StrictSettings):
    filtering_classes: list[str]
    area_size: AreaPercent | AreaSize
    action: Literal["delete"] | RemapClass
    comparator: Literal["less", "greater"]


class FilterBy(StrictSettings):
    polygon_sizes: PolygonSizes


class ObjectsFilterSettings(StrictSettings):
    filter_by: FilterBy


@register_layer
class ObjectsFilterLayer(Layer):
    """Delete objects of ``filtering_classes`` whose area percent or bbox size is less / greater than a limit."""

    action = "objects_filter"
    Settings = ObjectsFilterSettings

    def validate(self):
        if not isinstance(self.settings.filter_by.polygon_sizes.action, str):
            raise self.error(
                'remap_class is not implemented (as in the original); use "delete"',
                key="filter_by.polygon_sizes.action",
            )

    def _delete(self, label, width: int, height: int) -> bool:
        cfg = self.settings.filter_by.polygon_sizes
        less = cfg.comparator == "less"
        if isinstance(cfg.area_size, AreaPercent):
            percent = 100.0 * legacy_area(label.geometry) / float(width * height)
            return percent < cfg.area_size.percent if less else percent > cfg.area_size.percent
        w, h = legacy_size(label.geometry)
        if less:
            return w < cfg.area_size.width or h < cfg.area_size.height
        return w > cfg.area_size.width or h > cfg.area_size.height

    def process(self, el, ctx):
        classes = set(self.settings.filter_by.polygon_sizes.filtering_classes)
        ann = el.ann
        labels = [
            lb
            for lb in ann.labels
            if lb.class_title not in classes or not self._delete(lb, ann.width, ann.height)
        ]
        yield 0, el.replace(ann=ann.clone(labels=labels))
