"""Input / output layers: data, supervisely, save (with visualize), save_masks."""

from __future__ import annotations

import logging

import cv2
import numpy as np
from pydantic import Field

from unetkit.dtl.base import FreeSettings, Layer, StrictSettings
from unetkit.dtl.class_mapping import map_labels
from unetkit.dtl.geometry_ops import normalize_annotation
from unetkit.dtl.registry import register_layer
from unetkit.project import color_to_rgb
from unetkit.project.images import display_rgb

log = logging.getLogger(__name__)

EXAMPLE_SETTINGS = {
    "data": {"classes_mapping": "default"},
    "supervisely": {},
    "save": {"visualize": True},
    "save_masks": {
        "masks_machine": True,
        "masks_human": True,
        "gt_machine_color": {"bitmap": [1, 1, 1], "poly": [2, 2, 2]},
        "gt_human_color": {"bitmap": [255, 0, 0], "poly": [0, 255, 0]},
    },
}

SEPARATOR_RGB = (0, 255, 0)


def normalize(ann):
    """Annotation normalised to the image bounds (docs/original-behaviour.md, "DTL layers"): figures cropped / clipped,
    empty ones dropped."""
    return normalize_annotation(ann)


class DataSettings(StrictSettings):
    classes_mapping: str | dict[str, str]


@register_layer
class DataLayer(Layer):
    """Entry point for the images of one project: ``src`` = ["project/dataset" | "project/*" | "project", ...].

    Fix: every listed dataset is honoured (the original used only the last one)."""

    action = "data"
    Settings = DataSettings
    is_data = True
    mapping_setting = "classes_mapping"

    def validate(self):
        projects, datasets = set(), set()
        for i, src in enumerate(self.src):
            project, _, dataset = src.partition("/")
            if not project or (src.endswith("/")) or "\\" in src:
                raise self.error(
                    f'Wrong "data" layer source path {src!r} (expected "project/dataset")', f"src[{i}]"
                )
            projects.add(project)
            datasets.add(dataset or "*")
        if len(projects) != 1:
            raise self.error(f"data layer can work only with one project, got {sorted(projects)}", "src")
        self.project = projects.pop()
        self.datasets = {"*"} if "*" in datasets else datasets
        cm = self.settings.classes_mapping
        if isinstance(cm, str) and cm != "default":
            raise self.error(
                'must be "default" or an object {class: new name | "__default__" | "__ignore__"}',
                "classes_mapping",
            )

    def matches(self, project: str, dataset: str) -> bool:
        """Whether this layer is an entry point for images of ``project`` / ``dataset``."""
        return project == self.project and ("*" in self.datasets or dataset in self.datasets)

    def class_mapping(self, in_meta):
        cm = self.settings.classes_mapping
        return {"__other__": "__default__"} if isinstance(cm, str) else dict(cm)

    def process(self, el, ctx):
        yield 0, el.replace(ann=map_labels(normalize(el.ann), self.label_map))


class SaveBase(Layer):
    """Common part of the save layers: the element is written as a project item by the executor."""

    is_save = True

    def process(self, el, ctx):
        yield 0, el.replace(ann=normalize(el.ann))

    def render_extras(self, el) -> dict[str, np.ndarray]:
        """{sub-folder of the output dataset: PNG image} written beside the item (e.g. visualize)."""
        return {}

    def class_colors(self) -> dict[str, tuple]:
        return {c.title: color_to_rgb(c.color) for c in self.out_meta.classes}


@register_layer
class SuperviselyLayer(SaveBase):
    """Write every element into the new project named ``dst``."""

    action = "supervisely"
    Settings = FreeSettings


class SaveSettings(FreeSettings):
    visualize: bool = False


@register_layer
class SaveLayer(SaveBase):
    """Write every element; with ``visualize`` also ``<dataset>/visualize/<name>.png``."""

    action = "save"
    Settings = SaveSettings

    def validate(self):
        for key in ("images", "annotations"):
            if key in (self.settings.model_extra or {}):
                log.warning("layer %d (save): settings.%s is deprecated and ignored", self.index, key)

    def render_extras(self, el):
        if not self.settings.visualize:
            return {}
        return {"visualize": side_by_side(el.image.get(), el.ann, self.class_colors())}


class SaveMasksSettings(StrictSettings):
    masks_machine: bool
    masks_human: bool
    gt_machine_color: dict[str, list[int]] = Field(default_factory=dict)
    gt_human_color: dict[str, list[int]] = Field(default_factory=dict)


@register_layer
class SaveMasksLayer(SaveBase):
    """Write every element plus ``masks_machine/<name>.png`` and/or ``masks_human/<name>.png``."""

    action = "save_masks"
    Settings = SaveMasksSettings

    def validate(self):
        s = self.settings
        if not (s.masks_machine or s.masks_human):
            raise self.error("at least one of masks_machine / masks_human must be true", "masks_machine")
        for flag, key in ((s.masks_machine, "gt_machine_color"), (s.masks_human, "gt_human_color")):
            colors = getattr(s, key)
            if flag and not colors:
                raise self.error(
                    f"required when {key.replace('gt_', 'masks_').replace('_color', '')} is true", key
                )
            for title, rgb in colors.items():
                if len(rgb) != 3 or any(v < 0 or v > 255 for v in rgb):
                    raise self.error(
                        f"colour of {title!r} must be [r, g, b] with values 0..255", f"{key}.{title}"
                    )

    def render_extras(self, el):
        s, out = self.settings, {}
        if s.masks_machine:
            colors = {t: tuple(c) for t, c in s.gt_machine_color.items()}
            out["masks_machine"] = draw_objects(el.ann, colors, filled_all=True)
        if s.masks_human:
            colors = {t: tuple(c) for t, c in s.gt_human_color.items()}
            out["masks_human"] = side_by_side(el.image.get(), el.ann, colors)
        return out


def draw_objects(
    ann, colors: dict[str, tuple], *, filled_all: bool = False, thickness: int = 1
) -> np.ndarray:
    """Objects drawn in order over black in their class colour (classes without a colour are skipped).

    Bitmaps and polygons are filled; rectangles, lines and points are drawn as contours of ``thickness``
    unless ``filled_all`` (then rectangles are filled, lines and points drawn 1 px).
    """
    canvas = np.zeros((ann.height, ann.width, 3), np.uint8)
    for label in ann.labels:
        color = colors.get(label.class_title)
        if color is None:
            continue
        color = tuple(int(v) for v in color)
        geom = label.geometry
        if geom.name in ("bitmap", "polygon") or (filled_all and geom.name == "rectangle"):
            mask = np.zeros((ann.height, ann.width), np.uint8)
            geom.draw(mask, 1)
            canvas[mask.astype(bool)] = color
        elif geom.name == "rectangle":
            p1 = (int(round(geom.left)), int(round(geom.top)))
            p2 = (int(round(geom.right)), int(round(geom.bottom)))
            cv2.rectangle(canvas, p1, p2, color, thickness)
        elif geom.name == "line":
            pts = np.round(geom.points).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [pts], False, color, 1 if filled_all else thickness)
        elif geom.name == "point":
            center = (int(round(geom.x)), int(round(geom.y)))
            if filled_all:
                geom.draw(canvas, color)
            else:
                cv2.circle(canvas, center, thickness, color, -1)
    return canvas


def side_by_side(image: np.ndarray, ann, colors: dict[str, tuple]) -> np.ndarray:
    """original | 1-px green column | 50 % overlay of the class-coloured drawing (black = transparent)."""
    image = display_rgb(image)
    h, w = image.shape[:2]
    thickness = max(1, int((max(w, h) + 1) / 300))
    colors = {t: (1, 1, 1) if tuple(c) == (0, 0, 0) else tuple(c) for t, c in colors.items()}
    drawing = draw_objects(ann, colors, thickness=thickness)
    covered = drawing.any(axis=2)
    overlay = image.copy()
    blend = (image.astype(np.uint16) + drawing.astype(np.uint16)) // 2
    overlay[covered] = blend[covered].astype(np.uint8)
    sep = np.empty((h, 1, 3), np.uint8)
    sep[:] = SEPARATOR_RGB
    return np.concatenate([image, sep, overlay], axis=1)
