"""``meta.json``: object classes and tag metas, incl. the bare-string and legacy tag forms.

Original behaviour: docs/original-behaviour.md, "Meta and tags".

Unknown keys (``id``, ``hotkey``, ``description``, top-level ``projectType`` ...) are kept in ``extra`` and
written back. The writer keeps the tag form it read: bare strings stay bare strings, and a meta read from the
2018 ``tags_images``/``tags_objects`` lists is written the same way while every tag meta is still a plain
``none`` tag without extra keys.
"""

from __future__ import annotations

import copy
import hashlib
import random
import re
from dataclasses import dataclass, field
from datetime import datetime

from unetkit.errors import FormatError

TAG_VALUE_TYPES = ("none", "any_number", "any_string", "oneof_string", "date")  # the current SDK's (6.74)
CLASS_SHAPES = (
    "point",
    "rectangle",
    "polygon",
    "line",
    "bitmap",
    "graph",
    "cuboid",
    "any",
    "multichannelBitmap",
)
_COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")


def color_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` -> (r, g, b). Raises ValueError on a malformed colour."""
    if not isinstance(color, str) or not _COLOR_RE.match(color):
        raise ValueError(f"colour must be '#RRGGBB', got {color!r}")
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def rgb_to_color(rgb) -> str:
    r, g, b = (int(c) for c in rgb)
    if not all(0 <= c <= 255 for c in (r, g, b)):
        raise ValueError(f"RGB components must be 0..255, got {rgb!r}")
    return f"#{r:02X}{g:02X}{b:02X}"


def random_color(rng=None) -> str:
    """A random, reasonably bright colour; ``rng`` (random.Random or numpy Generator) makes it reproducible."""
    rng = rng or random.Random()
    draw = (lambda: int(rng.integers(256))) if hasattr(rng, "integers") else (lambda: rng.randrange(256))
    while True:
        rgb = [draw() for _ in range(3)]
        if max(rgb) >= 96:
            return rgb_to_color(rgb)


def _stable_color(title: str) -> str:
    seed = int.from_bytes(hashlib.sha256(title.encode("utf-8")).digest()[:8], "big")
    return random_color(random.Random(seed))


def _error(message: str, file, json_path: str, key: str = "") -> FormatError:
    return FormatError(message, file=file, json_path=f"{json_path}.{key}" if key else json_path)


@dataclass
class ObjClass:
    title: str
    shape: str
    color: str = "#FF0000"
    geometry_config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "title": self.title,
            "shape": self.shape,
            "color": self.color.upper(),
            "geometry_config": copy.deepcopy(self.geometry_config),
            **copy.deepcopy(self.extra),
        }

    @classmethod
    def from_json(cls, d, *, file=None, json_path="$") -> ObjClass:
        if not isinstance(d, dict):
            raise _error(f"a class must be an object, got {type(d).__name__}", file, json_path)
        title = d.get("title")
        if not isinstance(title, str) or not title:
            raise _error("class 'title' must be a non-empty string", file, json_path, "title")
        shape = d.get("shape")
        if not isinstance(shape, str) or not shape:
            raise _error(f"class {title!r}: 'shape' must be a non-empty string", file, json_path, "shape")
        color = d.get("color")
        if color is None:
            color = _stable_color(title)  # the legacy DTL lib generates a colour when it is missing
        try:
            color_to_rgb(color)
        except ValueError as exc:
            raise _error(f"class {title!r}: {exc}", file, json_path, "color") from None
        gc = d.get("geometry_config", {})
        if gc is None:
            gc = {}
        if not isinstance(gc, dict):
            raise _error("'geometry_config' must be an object", file, json_path, "geometry_config")
        extra = {k: v for k, v in d.items() if k not in ("title", "shape", "color", "geometry_config")}
        return cls(title, shape, color.upper(), copy.deepcopy(gc), copy.deepcopy(extra))


@dataclass
class TagMeta:
    name: str
    value_type: str = "none"
    values: list[str] | None = None
    color: str | None = None
    extra: dict = field(default_factory=dict)
    bare: bool = field(default=False, compare=False)  # read as a bare string; written back as one

    def to_json(self):
        if self.bare and self.value_type == "none" and self.color is None and not self.extra:
            return self.name
        out: dict = {"name": self.name, "value_type": self.value_type}
        if self.values is not None:
            out["values"] = list(self.values)
        if self.color is not None:
            out["color"] = self.color.upper()
        out.update(copy.deepcopy(self.extra))
        return out

    def is_valid_value(self, value) -> bool:
        if self.value_type == "none":
            return value is None
        if self.value_type == "any_number":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.value_type == "any_string":
            return isinstance(value, str)
        if self.value_type == "oneof_string":
            return isinstance(value, str) and value in (self.values or [])
        if self.value_type == "date":
            return isinstance(value, str) and _is_iso_datetime(value)
        return True

    @classmethod
    def from_json(cls, d, *, file=None, json_path="$") -> TagMeta:
        if isinstance(d, str):
            if not d:
                raise _error("tag name must be a non-empty string", file, json_path)
            return cls(d, bare=True)
        if not isinstance(d, dict):
            raise _error(f"a tag meta must be an object or a string, got {type(d).__name__}", file, json_path)
        name = d.get("name")
        if not isinstance(name, str) or not name:
            raise _error("tag 'name' must be a non-empty string", file, json_path, "name")
        vt = d.get("value_type", "none")
        if vt not in TAG_VALUE_TYPES:
            expected = ", ".join(TAG_VALUE_TYPES)
            message = f"tag {name!r}: unknown value_type {vt!r} (expected one of {expected})"
            raise _error(message, file, json_path, "value_type")
        values = d.get("values")
        if vt == "oneof_string":
            bad = not (isinstance(values, list) and values and all(isinstance(v, str) for v in values))
            problem = "oneof_string needs a non-empty list of strings in 'values'"
        else:
            bad, problem = values is not None, "'values' is only allowed for value_type oneof_string"
        if bad:
            raise _error(f"tag {name!r}: {problem}", file, json_path, "values")
        color = d.get("color")
        if color is not None:
            try:
                color_to_rgb(color)
            except ValueError as exc:
                raise _error(f"tag {name!r}: {exc}", file, json_path, "color") from None
        extra = {k: v for k, v in d.items() if k not in ("name", "value_type", "values", "color")}
        return cls(name, vt, list(values) if values is not None else None, color, copy.deepcopy(extra))


def _is_iso_datetime(value: str) -> bool:
    """ISO 8601 date or date-time, as the SDK writes ``date`` tag values ("2026-04-23T15:15:48", "...Z")."""
    try:
        datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return False
    return True


class ProjectMeta:
    """Classes and tag metas of a project."""

    def __init__(self, classes=None, tag_metas=None, *, extra=None, legacy_tag_lists=None):
        self.classes: list[ObjClass] = list(classes or [])
        self.tag_metas: list[TagMeta] = list(tag_metas or [])
        self.extra: dict = dict(extra or {})
        # {"tags_images": [...], "tags_objects": [...]} when read from the 2018 form
        self.legacy_tag_lists: dict | None = legacy_tag_lists
        _check_unique([c.title for c in self.classes], "class title")
        _check_unique([t.name for t in self.tag_metas], "tag name")

    def __eq__(self, other):
        return (
            isinstance(other, ProjectMeta)
            and self.classes == other.classes
            and self.tag_metas == other.tag_metas
            and self.extra == other.extra
        )

    def __repr__(self):
        return (
            f"ProjectMeta(classes={[c.title for c in self.classes]}, tags={[t.name for t in self.tag_metas]})"
        )

    def get_class(self, title) -> ObjClass | None:
        return next((c for c in self.classes if c.title == title), None)

    def get_tag_meta(self, name) -> TagMeta | None:
        return next((t for t in self.tag_metas if t.name == name), None)

    def clone(self, classes=None, tag_metas=None) -> ProjectMeta:
        legacy = self.legacy_tag_lists
        if tag_metas is not None:
            legacy = None
        return ProjectMeta(
            copy.deepcopy(self.classes if classes is None else classes),
            copy.deepcopy(self.tag_metas if tag_metas is None else tag_metas),
            extra=copy.deepcopy(self.extra),
            legacy_tag_lists=copy.deepcopy(legacy),
        )

    def to_json(self) -> dict:
        out: dict = {"classes": [c.to_json() for c in self.classes]}
        legacy = self.legacy_tag_lists
        names = [t.name for t in self.tag_metas]
        if (
            legacy is not None
            and set(names) == set(legacy["tags_images"]) | set(legacy["tags_objects"])
            and all(t.value_type == "none" and t.color is None and not t.extra for t in self.tag_metas)
        ):
            out["tags_images"] = list(legacy["tags_images"])
            out["tags_objects"] = list(legacy["tags_objects"])
        else:
            out["tags"] = [t.to_json() for t in self.tag_metas]
        out.update(copy.deepcopy(self.extra))
        return out

    @classmethod
    def from_json(cls, d, *, file=None) -> ProjectMeta:
        if isinstance(d, list):  # 2018 V1 classes.json: just the list of classes
            d = {"classes": d}
        if not isinstance(d, dict):
            raise FormatError(f"meta must be a JSON object, got {type(d).__name__}", file=file, json_path="$")
        raw_classes = d.get("classes", [])
        if not isinstance(raw_classes, list):
            raise FormatError("'classes' must be a list", file=file, json_path="$.classes")
        classes, seen = [], {}
        for i, c in enumerate(raw_classes):
            oc = ObjClass.from_json(c, file=file, json_path=f"$.classes[{i}]")
            if oc.title in seen:
                raise FormatError(
                    f"duplicate class title {oc.title!r} (also at $.classes[{seen[oc.title]}])",
                    file=file,
                    json_path=f"$.classes[{i}].title",
                )
            seen[oc.title] = i
            classes.append(oc)
        tag_metas, legacy = _read_tag_metas(d, file)
        extra = {k: v for k, v in d.items() if k not in ("classes", "tags", "tags_images", "tags_objects")}
        return cls(classes, tag_metas, extra=copy.deepcopy(extra), legacy_tag_lists=legacy)


def _read_tag_metas(d: dict, file):
    tags = d.get("tags", [])
    legacy_keys = [k for k in ("tags_images", "tags_objects") if d.get(k)]
    if tags and legacy_keys:
        raise FormatError(
            "both 'tags' and the legacy 'tags_images'/'tags_objects' lists are set; use one form",
            file=file,
            json_path=f"$.{legacy_keys[0]}",
        )
    out: list[TagMeta] = []
    index: dict[str, str] = {}
    legacy = None
    if legacy_keys:
        legacy = {"tags_images": [], "tags_objects": []}
        sources = [(k, d.get(k) or []) for k in ("tags_images", "tags_objects")]
    else:
        sources = [("tags", tags if tags is not None else [])]
    for key, items in sources:
        if not isinstance(items, list):
            raise FormatError(f"'{key}' must be a list", file=file, json_path=f"$.{key}")
        for i, t in enumerate(items):
            path = f"$.{key}[{i}]"
            tm = TagMeta.from_json(t, file=file, json_path=path)
            if legacy is not None:
                legacy[key].append(tm.name)
            prev = next((x for x in out if x.name == tm.name), None)
            if prev is not None:
                if legacy is not None and key != index[tm.name] and prev == tm:
                    continue  # same tag listed for images and objects
                raise FormatError(f"duplicate tag name {tm.name!r}", file=file, json_path=f"{path}")
            index[tm.name] = key
            out.append(tm)
    return out, legacy


def _check_unique(names, what):
    seen = set()
    for n in names:
        if n in seen:
            raise FormatError(f"duplicate {what} {n!r}")
        seen.add(n)
