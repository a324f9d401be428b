"""Class-mapping semantics: static output-meta computation shared by every layer.

Original behaviour: docs/original-behaviour.md, "DTL class mapping".

A mapping is ``{input class title: target}`` where target is ``"__default__"`` (keep), ``"__ignore__"``
(delete), a new title (rename; several onto one title merge) or ``{"title", "shape"}`` (replace by a class
of that shape). ``"__other__"`` expands to every input class not listed. Internal keys: ``"__new__"``
(list of new class dicts), ``"__clone__"`` ({parent: child}), ``"__update__"`` ({title: fields}).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Protocol

from unetkit.errors import GraphError
from unetkit.project import ObjClass, ProjectMeta, TagMeta

log = logging.getLogger(__name__)

DEFAULT, IGNORE, OTHER = "__default__", "__ignore__", "__other__"
INTERNAL_KEYS = ("__new__", "__clone__", "__update__")


class ErrorReporter(Protocol):
    """Turns a mapping error into a GraphError naming where it is (a DTL layer and its mapping setting)."""

    mapping_setting: str | None

    def error(self, message: str, key: str | None = None) -> GraphError: ...


def _fail(layer: ErrorReporter | None, message: str) -> GraphError:
    if layer is None:
        return GraphError(message)
    return layer.error(message, key=layer.mapping_setting)


def auto_color(title: str) -> str:
    """A stable colour for a class created by a layer (same title -> same colour in every run)."""
    digest = hashlib.blake2b(title.encode("utf-8"), digest_size=3).digest()
    r, g, b = (64 + d % 192 for d in digest)
    return f"#{r:02X}{g:02X}{b:02X}"


def _expand(in_meta: ProjectMeta, mapping: dict, layer: ErrorReporter | None) -> dict:
    """Class-title keys only, with __other__ expanded; checks every input class is covered."""
    titles = [c.title for c in in_meta.classes]
    explicit = {k: v for k, v in mapping.items() if k not in INTERNAL_KEYS and k != OTHER}
    for title, target in explicit.items():
        if title not in titles:
            if target == IGNORE:
                raise _fail(layer, f"Can not delete class {title}. Not found")
            if target == DEFAULT:
                raise _fail(layer, f"Can not keep class {title}. Not found")
            raise _fail(layer, f"Can not rename class {title}. Not found")
        if not (isinstance(target, str) and target) and not (isinstance(target, dict) and "title" in target):
            raise _fail(layer, f"Wrong mapping target for class {title}: {target!r}")
    if OTHER in mapping:
        for title in titles:
            explicit.setdefault(title, mapping[OTHER])
    missed = [t for t in titles if t not in explicit]
    if missed:
        raise _fail(layer, f"Some classes in mapping are missed: {set(missed)}")
    return explicit


def resolve_mapping(
    in_meta: ProjectMeta, mapping: dict, *, layer: ErrorReporter | None = None
) -> dict[str, str | None]:
    """{input title: output title, or None when objects of that class are dropped}."""
    out: dict[str, str | None] = {}
    for title, target in _expand(in_meta, mapping, layer).items():
        if target == DEFAULT:
            out[title] = title
        elif target == IGNORE:
            out[title] = None
        elif isinstance(target, dict):
            out[title] = target["title"]
        else:
            out[title] = target
    return out


def map_label_class(mapping_resolved: dict, title: str) -> str | None:
    """Output class title of an object of class ``title``; None = drop. Unknown titles are kept."""
    return mapping_resolved.get(title, title)


def _merge_into(classes: list[ObjClass], new: ObjClass, layer: ErrorReporter | None) -> None:
    for existing in classes:
        if existing.title == new.title:
            if existing.shape != new.shape:
                raise _fail(
                    layer,
                    f"Trying to add new class ({new.title}) with shape ({new.shape}). "
                    f"Same class with different shape ({existing.shape}) exists.",
                )
            return  # the first class with this title keeps its colour and fields
    classes.append(new)


def _new_class(title: str, shape: str, color: str | None = None, **fields) -> ObjClass:
    return ObjClass(
        title=title,
        shape=shape,
        color=color or auto_color(title),
        geometry_config=fields.pop("geometry_config", {}) or {},
        extra=fields,
    )


def apply_mapping(in_meta: ProjectMeta, mapping: dict, *, layer: ErrorReporter | None = None) -> ProjectMeta:
    """Output meta of a layer with this mapping (docs/original-behaviour.md, "DTL class mapping")."""
    expanded = _expand(in_meta, mapping, layer)
    kept: list[ObjClass] = []
    moved: list[ObjClass] = []
    for cls in in_meta.classes:
        target = expanded[cls.title]
        if target == DEFAULT:
            kept.append(cls)
        elif target == IGNORE:
            continue
        elif isinstance(target, dict):
            moved.append(_new_class(target["title"], target.get("shape", cls.shape), target.get("color")))
        else:
            moved.append(dataclasses.replace(cls, title=target))
    classes: list[ObjClass] = []
    for cls in kept + moved:
        _merge_into(classes, cls, layer)
    by_title = {c.title: c for c in in_meta.classes}
    for parent, child in (mapping.get("__clone__") or {}).items():
        if parent not in by_title:
            raise _fail(layer, f"Can not clone class {parent}. Not found")
        _merge_into(classes, dataclasses.replace(by_title[parent], title=child), layer)
    for spec in mapping.get("__new__") or []:
        spec = dict(spec)
        _merge_into(
            classes, _new_class(spec.pop("title"), spec.pop("shape"), spec.pop("color", None), **spec), layer
        )
    for title, fields in (mapping.get("__update__") or {}).items():
        idx = next((i for i, c in enumerate(classes) if c.title == title), None)
        if idx is None:
            raise _fail(layer, f"Can not update class {title}. Not found")
        classes[idx] = dataclasses.replace(classes[idx], **fields)
    return in_meta.clone(classes=classes)


def tag_meta_for(tag: str | dict) -> TagMeta:
    """Tag meta of a tag added by a layer: string -> `none`, {"name","value"} -> `any_string`."""
    if isinstance(tag, dict):
        return TagMeta(name=tag["name"], value_type="any_string", values=None, color=None, extra={})
    return TagMeta(name=tag, value_type="none", values=None, color=None, extra={})


def apply_tag_changes(
    meta: ProjectMeta, added: list, removed: list, *, layer: ErrorReporter | None = None
) -> ProjectMeta:
    """Remove the ``removed`` tag metas, then add metas for ``added`` tags (existing ones are kept)."""
    if not added and not removed:
        return meta
    tag_metas = [t for t in meta.tag_metas if t.name not in set(removed)]
    for tag in added:
        new = tag_meta_for(tag)
        if any(t.name == new.name for t in tag_metas):
            log.warning("%s: tag %r already exists in the meta", layer or "layer", new.name)
            continue
        tag_metas.append(new)
    return meta.clone(tag_metas=tag_metas)


def merge_metas(metas: list[ProjectMeta], *, layer: ErrorReporter | None = None) -> ProjectMeta:
    """Union of the metas reaching a layer through several `src` (classes then tags, first wins)."""
    if len(metas) == 1:
        return metas[0]
    classes: list[ObjClass] = []
    tag_metas: list[TagMeta] = []
    for meta in metas:
        for cls in meta.classes:
            _merge_into(classes, cls, layer)
        for tm in meta.tag_metas:
            if not any(t.name == tm.name for t in tag_metas):
                tag_metas.append(tm)
    return metas[0].clone(classes=classes, tag_metas=tag_metas)


def map_labels(ann, label_map: dict):
    """Annotation with every object's class mapped (None = object dropped); tags are kept."""
    labels = []
    for label in ann.labels:
        title = map_label_class(label_map, label.class_title)
        if title is None:
            continue
        labels.append(label if title == label.class_title else label.clone(class_title=title))
    return ann.clone(labels=labels)
