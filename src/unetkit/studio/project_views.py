"""What the studio shows of a project: summaries, items, class statistics, pictures, class layers, problems.

Scans are cached in memory per project folder and keyed by a signature of its files (meta.json and every
dataset's img/ann folder), so a changed project is read again; pixel statistics are computed on first demand.
Pictures are made as ``unetkit project render`` makes its overlays (:func:`unetkit.project.display_rgb`).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from unetkit.errors import UnetkitError
from unetkit.project import Project, color_to_rgb, display_rgb, encode_image, validate_project
from unetkit.project.geometry import RawGeometry
from unetkit.project.io import meta_path_of, walk_datasets
from unetkit.project.rasterize import rasterize_labelsets
from unetkit.serving.limits import ServeSettings
from unetkit.studio.errors import StudioError

MAX_PIXELS = ServeSettings().max_pixels  # pictures larger than the model service accepts are scaled down
BITS = 30  # classes per rasterize_labelsets pass
_cache: dict[str, tuple[tuple, dict]] = {}
_lock = threading.Lock()


def read_project(path: Path, name: str) -> Project:
    """The project in ``path`` (404 ``not_a_project`` when the folder holds no meta.json)."""
    if not path.is_dir() or not meta_path_of(path).is_file():
        raise StudioError(404, "not_a_project", f"{name!r} is not a Supervisely project (no meta.json)")
    return Project.read(path)


def signature(project: Project) -> tuple:
    """Changes when meta.json, a dataset folder's img/ or ann/ or the list of items changes."""
    parts: list = [meta_path_of(project.path).stat().st_mtime_ns]
    for ds in project.datasets:
        for sub in ("img", "ann"):
            try:
                parts.append((ds.name, sub, (ds.path / sub).stat().st_mtime_ns))
            except OSError:
                parts.append((ds.name, sub, None))
        parts.append(len(ds.items))
    return tuple(parts)


def scan(project: Project) -> dict:
    """``{datasets, items, classes, pixels: None}`` of a project (annotations read once per signature)."""
    key, sig = str(project.path), signature(project)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == sig:
            return hit[1]
    found = _scan(project)
    with _lock:
        _cache[key] = (sig, found)
    return found


def _scan(project: Project) -> dict:
    objects: Counter = Counter()
    images: Counter = Counter()
    datasets, items = [], []
    for ds in project.datasets:
        n_objects = 0
        for item in ds.items:
            row = {"dataset": ds.name, "name": item.name, "width": None, "height": None, "objects": 0,
                   "classes": [], "error": None}  # fmt: skip
            try:
                ann = item.read_annotation(project.meta)
            except UnetkitError as exc:
                row["error"] = str(exc)
                items.append(row)
                continue
            titles = [lb.class_title for lb in ann.labels]
            present = [c.title for c in project.meta.classes if c.title in titles]
            row.update(width=ann.width, height=ann.height, objects=len(titles), classes=present)
            objects.update(titles)
            images.update(present)
            n_objects += len(titles)
            items.append(row)
        datasets.append({"name": ds.name, "images": len(ds.items), "objects": n_objects})
    classes = [
        {"title": c.title, "shape": c.shape, "color": c.color, "objects": objects[c.title], "images": images[c.title]}
        for c in project.meta.classes
    ]  # fmt: skip
    return {"datasets": datasets, "items": items, "classes": classes, "pixels": None}


def summary(project: Project, name: str) -> dict:
    """``{name, datasets, images, objects, classes: [{title, shape, color}], error: None}``."""
    found = scan(project)
    return {
        "name": name,
        "datasets": len(found["datasets"]),
        "images": len(found["items"]),
        "objects": sum(d["objects"] for d in found["datasets"]),
        "classes": [{k: c[k] for k in ("title", "shape", "color")} for c in found["classes"]],
        "error": None,
    }


def class_stats(project: Project) -> list[dict]:
    """``[{title, color, shape, objects, images, pixels}]``: pixels a class's objects cover (overlaps count for
    every class), rasterised once per signature."""
    found = scan(project)
    if found["pixels"] is None:
        found["pixels"] = _pixels(project)
    return [{**c, "pixels": found["pixels"].get(c["title"], 0)} for c in found["classes"]]


def _pixels(project: Project) -> dict[str, int]:
    titles = [c.title for c in project.meta.classes]
    counts = dict.fromkeys(titles, 0)
    for item in project.items():
        try:
            ann = drawable(item.read_annotation(project.meta))
        except UnetkitError:
            continue
        for start in range(0, len(titles), BITS):
            chunk = titles[start : start + BITS]
            bits = rasterize_labelsets(ann, {t: i for i, t in enumerate(chunk)}, skip_unknown=True)
            for i, title in enumerate(chunk):
                counts[title] += int(np.count_nonzero(bits & np.int32(1 << i)))
    return counts


def drawable(ann):
    """The annotation without objects of geometries that cannot be drawn (as ``project render`` skips them)."""
    return ann.clone(labels=[lb for lb in ann.labels if not isinstance(lb.geometry, RawGeometry)])


def find_item(project: Project, dataset: str, item: str):
    ds = project.get_dataset(dataset)
    found = next((it for it in ds.items if it.name == item), None) if ds is not None else None
    if found is None:
        raise StudioError(404, "not_found", f"no item {dataset}/{item} in project {project.name!r}")
    return found


def parse_channels(text: str | None) -> tuple[int, ...] | None:
    """``"3,2,1"`` → (3, 2, 1) (the ``--channels`` of ``project render``); None → the first three."""
    if not text:
        return None
    try:
        channels = tuple(int(c) for c in text.split(","))
    except ValueError:
        channels = ()
    if len(channels) != 3 or min(channels) < 0:
        raise StudioError(
            400, "invalid_input", f"channels {text!r}: expected three channel numbers such as 3,2,1"
        )
    return channels


def fit(image: np.ndarray, *, nearest: bool = False) -> np.ndarray:
    """``image`` scaled down to at most :data:`MAX_PIXELS` pixels (unchanged when it is smaller)."""
    h, w = image.shape[:2]
    if h * w <= MAX_PIXELS:
        return image
    scale = math.sqrt(MAX_PIXELS / (h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def picture(item, channels=None) -> np.ndarray:
    """The item's image as RGB uint8, as ``project render`` shows it (16-bit, float and many channels too)."""
    try:
        return display_rgb(item.read_pixels(), channels)
    except UnetkitError as exc:
        raise StudioError(400, "invalid_input", f"{item.dataset}/{item.name}: {exc}") from None


def png(image: np.ndarray) -> bytes:
    return encode_image(fit(image, nearest=image.ndim == 3 and image.shape[2] == 4), ".png")


def layer(project: Project, item, title: str) -> np.ndarray:
    """RGBA: the class colour (alpha 255) where an object of class ``title`` is, transparent elsewhere."""
    obj_class = project.meta.get_class(title)
    if obj_class is None:
        raise StudioError(404, "not_found", f"project {project.name!r} has no class {title!r}")
    ann = drawable(item.read_annotation(project.meta))
    covered = rasterize_labelsets(ann, {title: 0}, skip_unknown=True) != 0
    out = np.zeros(covered.shape + (4,), np.uint8)
    out[covered] = (*color_to_rgb(obj_class.color), 255)
    return out


def problems(path: Path, rel) -> dict:
    """``{ok, problems: [{dataset, item, path, message, file, warning}]}`` of ``unetkit project validate``."""
    index: dict[str, tuple[str, str]] = {}
    folders: list[tuple[str, str]] = []
    for ds in walk_datasets(path, []):
        folders.append((str(ds.path.resolve()), ds.name))
        for it in ds.items:
            for file in (it.image_path, it.ann_path):
                index[str(file.resolve())] = (ds.name, it.name)
    out = []
    for p in validate_project(path):
        file = str(Path(p.file).resolve()) if p.file else ""
        dataset, item = index.get(file, ("", ""))
        if not dataset:
            dataset = next(
                (name for folder, name in folders if file.startswith(folder + "/") or file == folder), ""
            )
            item = _item_of(file) if dataset else ""
        out.append({"dataset": dataset, "item": item, "path": p.json_path or "$", "message": p.message,
                    "file": _rel(rel, file), "warning": p.warning})  # fmt: skip
    return {"ok": not any(not p["warning"] for p in out), "problems": out}


def _item_of(file: str) -> str:
    """``.../ann/x.png.json`` → ``x.png``; ``.../img/x.png`` → ``x.png``; anything else → ''."""
    p = Path(file)
    if p.parent.name == "ann" and p.name.endswith(".json"):
        return p.name[: -len(".json")]
    return p.name if p.parent.name == "img" else ""


def _rel(rel, file: str) -> str:
    if not file:
        return ""
    try:
        return rel(file)
    except StudioError:
        return file
