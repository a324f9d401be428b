"""Flow-control layers: dummy, multiply, if (every condition kind), dataset."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, model_validator

from unetkit.dtl.base import FreeSettings, Layer, StrictSettings
from unetkit.dtl.layers.classes import legacy_area
from unetkit.dtl.registry import register_layer

EXAMPLE_SETTINGS = {
    "dummy": {},
    "multiply": {"multiply": 2},
    "if": {"condition": {"min_objects_count": 1}},
    "dataset": {"name": "renamed"},
}


@register_layer
class DummyLayer(Layer):
    """Pass-through; used to merge several placeholders into one."""

    action = "dummy"
    Settings = FreeSettings

    def process(self, el, ctx):
        yield 0, el


class MultiplySettings(StrictSettings):
    multiply: int = Field(ge=1)


@register_layer
class MultiplyLayer(Layer):
    """Yield the element N times (random layers downstream then differ per copy)."""

    action = "multiply"
    Settings = MultiplySettings

    def process(self, el, ctx):
        for _ in range(self.settings.multiply):
            yield 0, el


# condition kind -> (required keys, optional keys)
CONDITIONS: dict[str, set[str]] = {
    "probability": set(),
    "regex_names": set(),
    "project_datasets": set(),
    "min_objects_count": set(),
    "include_classes": set(),
    "tags": set(),
    "min_height": set(),
    "min_width": set(),
    "min_area": set(),
    "sum_object_area": {"classes"},
    "name_in_range": {"frame_step"},
}
PROJECT_DATASET_RE = re.compile(r"^[^/]+/[^/]+$")


class IfSettings(StrictSettings):
    condition: dict[str, Any]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


@register_layer
class IfLayer(Layer):
    """Route each element to ``dst[0]`` when the condition holds, else to ``dst[1]``."""

    action = "if"
    Settings = IfSettings
    n_branches = 2

    def validate(self):
        cond = self.settings.condition
        kinds = [k for k in cond if k in CONDITIONS]
        if len(kinds) != 1:
            raise self.error(
                f"must hold exactly one condition of {sorted(CONDITIONS)}, got {sorted(cond)}", "condition"
            )
        kind = self.kind = kinds[0]
        for key in cond:
            if key != kind and key not in CONDITIONS[kind]:
                raise self.error(f"unknown key for a {kind!r} condition", f"condition.{key}")
        for key in CONDITIONS[kind]:
            if key not in cond:
                raise self.error(f"required with {kind!r}", f"condition.{key}")
        value, key = cond[kind], f"condition.{kind}"
        if kind == "probability" and not (_is_number(value) and 0 <= value <= 1):
            raise self.error("must be a number in [0, 1]", key)
        if kind in ("min_objects_count", "min_height", "min_width", "min_area"):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise self.error("must be an integer >= 0", key)
        if kind in ("regex_names", "project_datasets", "include_classes", "tags") and not _is_str_list(value):
            raise self.error("must be an array of strings", key)
        if kind == "regex_names":
            try:
                self.patterns = [re.compile(p) for p in value]
            except re.error as exc:
                raise self.error(f"invalid regular expression: {exc}", key) from None
        if kind == "project_datasets":
            for i, s in enumerate(value):
                if not PROJECT_DATASET_RE.match(s):
                    raise self.error(
                        f"{s!r} must look like 'project/dataset' ('*' allowed on each side)", f"{key}[{i}]"
                    )
        if kind == "sum_object_area":
            if not _is_number(value) or value < 0:
                raise self.error("must be a number >= 0", key)
            if not _is_str_list(cond["classes"]):
                raise self.error("must be an array of strings", "condition.classes")
        if kind == "name_in_range":
            if not (_is_str_list(value) and len(value) == 2):
                raise self.error("must be [first_name, last_name]", key)
            step = cond["frame_step"]
            if not (isinstance(step, int) and not isinstance(step, bool) and step >= 1):
                raise self.error("must be an integer >= 1", "condition.frame_step")
            self.order_dependent = True  # the in-range counter depends on the arrival order
            self.counter = 0

    def test(self, el, ctx) -> bool:
        """Whether the condition holds for ``el``."""
        cond, kind = self.settings.condition, self.kind
        value, ann = cond[kind], el.ann
        if kind == "probability":
            return bool(ctx.rng.random() < value)
        if kind == "regex_names":
            return any(p.search(el.stem) for p in self.patterns)
        if kind == "project_datasets":
            for spec in value:
                proj, ds = spec.split("/", 1)
                if proj in ("*", el.project) and ds in ("*", el.dataset):
                    return True
            return False
        if kind == "min_objects_count":
            return len(ann.labels) >= value
        if kind == "include_classes":
            return any(lb.class_title in value for lb in ann.labels)
        if kind == "tags":
            return any(t.name in value for t in ann.tags)
        if kind == "min_height":
            return ann.height >= value
        if kind == "min_width":
            return ann.width >= value
        if kind == "min_area":
            return ann.height * ann.width >= value
        if kind == "sum_object_area":
            classes = set(cond["classes"])
            return sum(legacy_area(lb.geometry) for lb in ann.labels if lb.class_title in classes) >= value
        lo, hi = value
        if not lo <= el.stem <= hi:
            return False
        hit = self.counter % cond["frame_step"] == 0
        self.counter += 1
        return hit

    def process(self, el, ctx):
        yield (0 if self.test(el, ctx) else 1), el


class DatasetSettings(StrictSettings):
    name: str | None = Field(default=None, pattern=r"^[0-9a-zA-Z \-_]+$", max_length=2048)
    rule: str | None = None

    @model_validator(mode="after")
    def _one_of(self):
        if (self.name is None) == (self.rule is None):
            raise ValueError('exactly one of "name" or "rule" is required')
        if self.rule is not None and self.rule != "save_original":
            raise ValueError('"rule" must be "save_original"')
        return self


@register_layer
class DatasetLayer(Layer):
    """Set the output dataset: ``name``, or the original dataset name (``rule: save_original``)."""

    action = "dataset"
    Settings = DatasetSettings

    def process(self, el, ctx):
        yield 0, el.replace(out_dataset=self.settings.name if self.settings.name is not None else el.dataset)
