"""Project summaries (``unetkit project info``) and rendering to class-index masks + overlays."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from unetkit.project.images import display_rgb
from unetkit.project.io import Project, atomic_write_json, dataset_parts, write_image
from unetkit.project.meta import color_to_rgb
from unetkit.project.output_folder import new_output_folder
from unetkit.project.rasterize import rasterize, render_overlay


def project_info(path) -> dict:
    """Datasets with image/object counts, objects per class and shape, image and object tag counts."""
    project = Project.read(path)
    per_class: Counter = Counter()
    per_shape: Counter = Counter()
    image_tags: Counter = Counter()
    object_tags: Counter = Counter()
    datasets = []
    for ds in project.datasets:
        n_objects = 0
        for item in ds.items:
            ann = item.read_annotation(project.meta)
            n_objects += len(ann.labels)
            image_tags.update(t.name for t in ann.tags)
            for label in ann.labels:
                per_class[label.class_title] += 1
                per_shape[label.geometry.name] += 1
                object_tags.update(t.name for t in label.tags)
        datasets.append({"name": ds.name, "images": len(ds.items), "objects": n_objects})
    return {
        "project": project.name,
        "path": str(project.path),
        "images": len(project),
        "datasets": datasets,
        "classes": [
            {"title": c.title, "shape": c.shape, "color": c.color, "objects": per_class.get(c.title, 0)}
            for c in project.meta.classes
        ],
        "objects_per_shape": dict(sorted(per_shape.items())),
        "tag_metas": [{"name": t.name, "value_type": t.value_type} for t in project.meta.tag_metas],
        "image_tags": dict(sorted(image_tags.items())),
        "object_tags": dict(sorted(object_tags.items())),
    }


def class_index_map(project: Project) -> dict[str, int]:
    """bg = 0, then the project's classes in meta order (1, 2, ...)."""
    return {c.title: i + 1 for i, c in enumerate(project.meta.classes)}


def render_project(
    path, out_dir, *, alpha=0.5, overlays=True, channels: tuple[int, ...] | None = None
) -> dict:
    """Write ``<out>/<dataset>/masks/<stem>.png`` (class-index PNG: 0 = background, then classes in meta order;
    uint16 when there are more than 255 classes) and ``<out>/<dataset>/overlays/<stem>.jpg``; plus
    ``<out>/classes.json`` with the index table. Unknown geometries are skipped. ``channels``: which three channels
    of many-channel images the overlays show (default: the first three). Returns a summary."""
    project = Project.read(path)
    with new_output_folder(out_dir, sources=[project.path]) as staging:
        summary = _render_into(project, staging, alpha, overlays, channels)
    return {**summary, "out": str(out_dir)}


def _render_into(project: Project, out_dir: Path, alpha: float, overlays: bool, channels=None) -> dict:
    mapping = class_index_map(project)
    dtype = np.uint8 if len(mapping) < 256 else np.uint16
    count = 0
    for ds in project.datasets:
        ds_out = out_dir.joinpath(*dataset_parts(ds.name))
        stems = Counter(Path(i.name).stem for i in ds.items)
        for item in ds.items:
            ann = item.read_annotation(project.meta)
            stem = Path(item.name).stem if stems[Path(item.name).stem] == 1 else item.name
            mask = _rasterize_drawable(ann, mapping, item.ann_path).astype(dtype)
            write_image(ds_out / "masks" / f"{stem}.png", mask)
            if overlays:
                image = display_rgb(item.read_pixels(), channels)
                write_image(
                    ds_out / "overlays" / f"{stem}.jpg", render_overlay(image, ann, project.meta, alpha)
                )
            count += 1
    table = {
        "class_title_to_idx": {"__bg__": 0, **mapping},
        "colors": {c.title: list(color_to_rgb(c.color)) for c in project.meta.classes},
    }
    atomic_write_json(out_dir / "classes.json", table)
    return {"items": count, "out": str(out_dir), **table}


def _rasterize_drawable(ann, mapping, file):
    from unetkit.project.geometry import RawGeometry

    drawable = ann.clone(labels=[lb for lb in ann.labels if not isinstance(lb.geometry, RawGeometry)])
    return rasterize(drawable, mapping, file=file)
