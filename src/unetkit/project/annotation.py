"""Annotation JSON: image size, image tags, labelled objects, description, ``customBigData``.

Original behaviour: docs/original-behaviour.md, "Annotation JSON".

Unknown keys of annotations, objects and tags are kept in ``extra`` and written back unchanged; geometries that
unetkit does not interpret become :class:`RawGeometry` and are also written back unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

from unetkit.errors import FormatError
from unetkit.project.geometry import LABEL_KEYS, Geometry, geometry_from_json
from unetkit.project.limits import COORD_LIMIT, check_pixels
from unetkit.project.meta import ProjectMeta


@dataclass
class Tag:
    name: str
    value: object = None
    extra: dict = field(default_factory=dict)
    bare: bool = field(
        default=False, compare=False
    )  # read as a bare string (legacy DTL); written back as one

    def to_json(self):
        if self.bare and self.value is None and not self.extra:
            return self.name
        out: dict = {"name": self.name}
        if self.value is not None:
            out["value"] = self.value
        out.update(copy.deepcopy(self.extra))
        return out

    @classmethod
    def from_json(cls, d, meta: ProjectMeta | None, *, file=None, json_path="$") -> Tag:
        if isinstance(d, str):
            tag = cls(d, bare=True)
        elif isinstance(d, dict):
            name = d.get("name")
            if not isinstance(name, str) or not name:
                raise FormatError(
                    "tag 'name' must be a non-empty string", file=file, json_path=f"{json_path}.name"
                )
            extra = {k: v for k, v in d.items() if k not in ("name", "value")}
            tag = cls(name, d.get("value"), copy.deepcopy(extra))
        else:
            raise FormatError(
                f"a tag must be an object or a string, got {type(d).__name__}", file=file, json_path=json_path
            )
        if meta is not None:
            tm = meta.get_tag_meta(tag.name)
            if tm is None:
                raise FormatError(
                    f"tag {tag.name!r} is not defined in meta.json", file=file, json_path=json_path
                )
            if not tm.is_valid_value(tag.value):
                expected = f"one of {tm.values}" if tm.value_type == "oneof_string" else tm.value_type
                expected += " (an ISO 8601 date-time string)" if tm.value_type == "date" else ""
                raise FormatError(
                    f"tag {tag.name!r}: value {tag.value!r} does not match its value_type ({expected})",
                    file=file,
                    json_path=f"{json_path}.value",
                )
        return tag


def _read_tags(raw, meta, file, path, *, required=False) -> list[Tag]:
    if raw is None and not required:
        return []
    if not isinstance(raw, list):
        raise FormatError("'tags' must be a list", file=file, json_path=path)
    return [Tag.from_json(t, meta, file=file, json_path=f"{path}[{i}]") for i, t in enumerate(raw)]


@dataclass
class Label:
    class_title: str
    geometry: Geometry
    tags: list[Tag] = field(default_factory=list)
    description: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        name = self.geometry.name
        out = {
            "classTitle": self.class_title,
            "description": self.description,
            "tags": [t.to_json() for t in self.tags],
            "geometryType": name,
            "shape": name,
        }
        out.update(copy.deepcopy(self.extra))
        out.update(self.geometry.to_json())
        return out

    def clone(self, **changes) -> Label:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json(cls, d, meta: ProjectMeta, *, file=None, json_path="$", image_size=None) -> Label:
        """``image_size`` (height, width) bounds a bitmap before it is decoded (see geometry_from_json)."""
        if not isinstance(d, dict):
            raise FormatError(
                f"an object must be a JSON object, got {type(d).__name__}", file=file, json_path=json_path
            )
        title = d.get("classTitle")
        if not isinstance(title, str):
            raise FormatError("missing 'classTitle'", file=file, json_path=f"{json_path}.classTitle")
        obj_class = meta.get_class(title)
        if obj_class is None:
            raise FormatError(
                f"class {title!r} is not defined in meta.json", file=file, json_path=f"{json_path}.classTitle"
            )
        shape = obj_class.shape
        if shape == "any":
            shape = d.get("geometryType") or d.get("shape")
            if not isinstance(shape, str):
                raise FormatError(
                    f"class {title!r} has shape 'any': the object needs 'geometryType'",
                    file=file,
                    json_path=f"{json_path}.geometryType",
                )
        geometry = geometry_from_json(shape, d, file=file, json_path=json_path, image_size=image_size)
        tags = _read_tags(d.get("tags"), meta, file, f"{json_path}.tags")
        description = d.get("description") or ""
        if not isinstance(description, str):
            raise FormatError(
                "'description' must be a string", file=file, json_path=f"{json_path}.description"
            )
        payload = geometry.to_json().keys() if geometry.name != "bitmap" else ("bitmap",)
        extra = {k: v for k, v in d.items() if k not in LABEL_KEYS and k not in payload}
        return cls(title, geometry, tags, description, copy.deepcopy(extra))


@dataclass
class Annotation:
    height: int
    width: int
    labels: list[Label] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    description: str = ""
    custom_big_data: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {
            "description": self.description,
            "size": {"height": int(self.height), "width": int(self.width)},
            "tags": [t.to_json() for t in self.tags],
            "objects": [lbl.to_json() for lbl in self.labels],
            "customBigData": copy.deepcopy(self.custom_big_data),
        }
        out.update(copy.deepcopy(self.extra))
        return out

    def clone(self, **changes) -> Annotation:
        """A copy with some fields replaced (lists are copied, labels/tags shared unless replaced)."""
        base = {"labels": list(self.labels), "tags": list(self.tags)}
        base.update(changes)
        return dataclasses.replace(self, **base)

    @classmethod
    def from_json(cls, d, meta: ProjectMeta, *, file=None) -> Annotation:
        """Parse an annotation; any problem raises FormatError naming ``file`` and the JSON path."""
        height, width = parse_size(d, file)
        tags = _read_tags(d.get("tags"), meta, file, "$.tags")
        objects = d.get("objects")
        if not isinstance(objects, list):
            raise FormatError(
                "missing or invalid 'objects' (expected a list)", file=file, json_path="$.objects"
            )
        labels = [
            Label.from_json(o, meta, file=file, json_path=f"$.objects[{i}]", image_size=(height, width))
            for i, o in enumerate(objects)
        ]
        return cls(height, width, labels, tags, *parse_misc(d, file))


def parse_size(d, file) -> tuple[int, int]:
    """(height, width) of an annotation dict, validated."""
    if not isinstance(d, dict):
        raise FormatError(
            f"annotation must be a JSON object, got {type(d).__name__}", file=file, json_path="$"
        )
    size = d.get("size")
    if not isinstance(size, dict):
        raise FormatError("missing 'size' ({'height': H, 'width': W})", file=file, json_path="$.size")
    out = []
    for key in ("height", "width"):
        v = size.get(key)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0 or v > COORD_LIMIT:
            shown = repr(v) if len(repr(v)) <= 24 else f"{repr(v)[:12]}... ({len(repr(v))} characters)"
            raise FormatError(
                f"size.{key} must be a positive integer up to {COORD_LIMIT}, got {shown}",
                file=file,
                json_path=f"$.size.{key}",
            )
        out.append(v)
    check_pixels(out[1], out[0], "image size", file=file, json_path="$.size")
    return out[0], out[1]


def parse_misc(d: dict, file) -> tuple[str, dict, dict]:
    """(description, customBigData, extra) of an annotation dict."""
    description = d.get("description") or ""
    if not isinstance(description, str):
        raise FormatError("'description' must be a string", file=file, json_path="$.description")
    cbd = d.get("customBigData") or {}
    if not isinstance(cbd, dict):
        raise FormatError("'customBigData' must be an object", file=file, json_path="$.customBigData")
    extra = {
        k: v for k, v in d.items() if k not in ("description", "size", "tags", "objects", "customBigData")
    }
    return description, copy.deepcopy(cbd), copy.deepcopy(extra)
