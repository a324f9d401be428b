"""Full project check: every problem as (file, JSON path, message), never stopping at the first one."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from unetkit.errors import FormatError, format_location
from unetkit.project.annotation import Label, _read_tags, parse_misc, parse_size
from unetkit.project.geometry import Bitmap, RawGeometry
from unetkit.project.images import read_pixels
from unetkit.project.io import (
    IMAGE_EXTENSIONS,
    image_size,
    is_image_name,
    load_json,
    meta_path_of,
    walk_datasets,
)
from unetkit.project.meta import ProjectMeta


@dataclass(frozen=True)
class Problem:
    file: str
    json_path: str
    message: str
    warning: bool = False  # worth knowing, but the project is still usable

    def __str__(self) -> str:
        where = format_location(self.file, self.json_path)
        return f"{where}: {self.message}" if where else self.message

    @classmethod
    def from_error(cls, err: FormatError) -> Problem:
        return cls(err.file or "", err.json_path or "", err.message)


def validate_project(path, *, deep: bool = False) -> list[Problem]:
    """Check meta, layout, every annotation (structure, classes, tags, geometry, size vs image, bitmaps inside
    the image), annotations without an image and stray files in ``img/`` (a warning). ``deep`` also decodes
    every image completely (truncated files). Returns [] for a valid project."""
    path = Path(path)
    problems: list[Problem] = []
    if not path.is_dir():
        return [Problem(str(path), "", "project folder not found")]
    meta_path = meta_path_of(path)
    try:
        meta = ProjectMeta.from_json(load_json(meta_path), file=meta_path)
    except FormatError as err:
        problems.append(Problem.from_error(err))
        meta = None
    layout: list[FormatError] = []
    datasets = walk_datasets(path, layout)
    problems.extend(Problem.from_error(e) for e in layout)
    n_items = 0
    for ds in datasets:
        if not ds.items and (ds.path / "img").is_dir() and (ds.path / "ann").is_dir():
            problems.append(Problem(str(ds.path), "", f"dataset {ds.name!r} is empty (no images)"))
        n_items += len(ds.items)
        problems.extend(_stray_files(ds.path))
        for item in ds.items:
            problems.extend(validate_item(item.ann_path, item.image_path, meta))
            if deep:
                problems.extend(_decode_problems(item.image_path))
    if n_items == 0 and not layout:
        problems.append(Problem(str(path), "", "project is empty (no items)"))
    return problems


def validate_item(ann_path: Path, image_path: Path | None, meta: ProjectMeta | None) -> list[Problem]:
    """Problems of one annotation file (and its image's size, when ``image_path`` is given)."""
    out: list[Problem] = []

    def guard(fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except FormatError as err:
            out.append(Problem.from_error(err))
            return None

    d = guard(load_json, ann_path)
    if d is None:
        return out
    size = guard(parse_size, d, ann_path)
    if size is None:
        return out
    guard(parse_misc, d, ann_path)
    height, width = size
    if image_path is not None:
        try:
            ih, iw = image_size(image_path)
        except FormatError as err:
            out.append(Problem.from_error(err))
        else:
            if (ih, iw) != (height, width):
                size = (min(height, ih), min(width, iw))  # bitmaps must fit both before they are decoded
                out.append(
                    Problem(
                        str(ann_path),
                        "$.size",
                        f"size {height}x{width} (HxW) does not match the image {image_path.name} ({ih}x{iw})",
                    )
                )
    if meta is None:
        return out
    image_tags = guard(_read_tags, d.get("tags"), meta, ann_path, "$.tags") or []
    for j, tag in enumerate(image_tags):
        msg = _applicability_problem(meta, tag.name, None)
        if msg:
            out.append(Problem(str(ann_path), f"$.tags[{j}]", msg))
    objects = d.get("objects")
    if not isinstance(objects, list):
        out.append(Problem(str(ann_path), "$.objects", "missing or invalid 'objects' (expected a list)"))
        return out
    for i, obj in enumerate(objects):
        jp = f"$.objects[{i}]"
        label = guard(Label.from_json, obj, meta, file=ann_path, json_path=jp, image_size=size)
        if label is None:
            continue
        for j, tag in enumerate(label.tags):
            msg = _applicability_problem(meta, tag.name, label.class_title)
            if msg:
                out.append(Problem(str(ann_path), f"{jp}.tags[{j}]", msg))
        if isinstance(label.geometry, RawGeometry):
            message = (
                f"class {label.class_title!r}: a {label.geometry.name!r} object cannot be rasterised "
                "(render leaves it out; training and evaluation need the class left out or converted)"
            )
            out.append(Problem(str(ann_path), jp, message, warning=True))
            continue
        msg = _bounds_problem(label.geometry, height, width)
        if msg:
            key = ".bitmap.origin" if isinstance(label.geometry, Bitmap) else ".points"
            out.append(Problem(str(ann_path), jp + key, msg))
    return out


def _stray_files(ds_path: Path) -> list[Problem]:
    """Annotations without an image (errors) and files in img/ that are not images (warnings)."""
    img_dir, ann_dir = ds_path / "img", ds_path / "ann"
    if not img_dir.is_dir() or not ann_dir.is_dir():
        return []
    out, claimed = [], set()
    for f in sorted(img_dir.iterdir()):
        if f.name.startswith("."):
            continue
        if f.is_file() and is_image_name(f.name):
            claimed.update((f"{f.name}.json", f"{f.stem}.json"))
        else:
            what = "folder" if f.is_dir() else "file"
            message = f"stray {what} in img/ (not an image: {', '.join(IMAGE_EXTENSIONS)}); it is ignored"
            out.append(Problem(str(f), "", message, warning=True))
    for f in sorted(ann_dir.iterdir()):
        if f.suffix == ".json" and f.name not in claimed and not f.name.startswith("."):
            out.append(Problem(str(f), "", f"annotation without an image (no img/{f.name[:-5]})"))
    return out


def _decode_problems(image_path: Path) -> list[Problem]:
    """Decode the whole image (``validate --deep``): truncated or corrupt files are problems."""
    try:
        read_pixels(image_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(image_path) as im:
                im.load()  # PIL notices truncated files that OpenCV decodes partly (JPEG)
    except FormatError as err:
        return [Problem.from_error(err)]
    except UnidentifiedImageError:
        return []  # a format only OpenCV / tifffile read; read_pixels has decoded it
    except (OSError, ValueError, SyntaxError) as exc:
        return [Problem(str(image_path), "", f"cannot decode image: {exc}")]
    return []


def _bounds_problem(geometry, height: int, width: int) -> str | None:
    """Bitmaps must lie fully inside the image; vector shapes must touch it (the SDK crops them)."""
    b = geometry.bbox()
    if isinstance(geometry, Bitmap):
        if b.left < 0 or b.top < 0 or b.right >= width or b.bottom >= height:
            return (
                f"bitmap ({b.left},{b.top})-({b.right},{b.bottom}) lies outside the image "
                f"(width {width}, height {height})"
            )
        return None
    if b.right < 0 or b.bottom < 0 or b.left > width - 1 or b.top > height - 1:
        return f"{geometry.name} lies entirely outside the image (width {width}, height {height})"
    return None


def _applicability_problem(meta: ProjectMeta, name: str, class_title: str | None) -> str | None:
    """Newer metas restrict tags with ``applicable_type`` (all|imagesOnly|objectsOnly) and ``classes``."""
    tm = meta.get_tag_meta(name)
    if tm is None:
        return None
    applicable = tm.extra.get("applicable_type", "all")
    if class_title is None and applicable == "objectsOnly":
        return f"tag {name!r} is applicable to objects only (applicable_type objectsOnly), found on the image"
    if class_title is not None:
        if applicable == "imagesOnly":
            return (
                f"tag {name!r} is applicable to images only (applicable_type imagesOnly), found on an object"
            )
        classes = tm.extra.get("classes") or []
        if classes and class_title not in classes:
            return (
                f"tag {name!r} is not applicable to class {class_title!r} (its meta lists classes {classes})"
            )
    return None
