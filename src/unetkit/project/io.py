"""Project folders on disk: reading (flat + nested datasets, legacy ``ann/<stem>.json``), writing, images.

Original behaviour: docs/original-behaviour.md, "Project folders".

Images are pixel arrays H×W×C of their native depth (see ``unetkit.project.images``). Every file is written atomically (``unetkit.atomic``:
0644 files, 0755 folders); names that could escape the project folder are rejected.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unetkit import atomic
from unetkit.errors import FormatError
from unetkit.project.annotation import Annotation
from unetkit.project.images import IMAGE_EXTENSIONS, display_rgb, encode_pixels, pixel_info, read_pixels
from unetkit.project.meta import ProjectMeta

META_FILE = "meta.json"
LEGACY_CLASSES_FILE = "classes.json"  # 2018 "V1" projects: just the list of classes
NESTED_DIR = "datasets"


# ------------------------------------------------------------------------------------------------ files

atomic_write_bytes = atomic.write_bytes  # public names of the one atomic writer (unetkit.atomic)
atomic_write_json = atomic.write_json


def load_json(path):
    """Parse a JSON file; FormatError (with line/column) when it is missing or not valid JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read file: {exc}", file=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", file=path, json_path="$"
        ) from None


# ----------------------------------------------------------------------------------------------- images


def read_image(path) -> np.ndarray:
    """Read an image file as an (H, W, 3) RGB uint8 picture for viewing (see :func:`display_rgb`); models and DTL
    read :func:`read_pixels` (native bit depth and channels)."""
    return display_rgb(read_pixels(path))


def image_size(path) -> tuple[int, int]:
    """(height, width) of an image file from its header, after EXIF orientation (as :func:`read_pixels`)."""
    info = pixel_info(path)
    return info.height, info.width


def encode_image(image: np.ndarray, ext: str) -> bytes:
    """Encode pixels (any supported depth and channel count) in the format given by ``ext``."""
    return encode_pixels(image, ext)


def write_image(path, image: np.ndarray) -> None:
    """Write pixels atomically, encoded by the file extension."""
    path = Path(path)
    atomic_write_bytes(path, encode_image(image, path.suffix))


# ----------------------------------------------------------------------------------------------- names


def check_name(name: str, what: str = "name") -> str:
    """Reject names that could escape a folder: empty, '.', '..', slashes, backslashes, NUL, drive/absolute."""
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise FormatError(f"invalid {what} {name!r}")
    bad = [c for c in ("/", "\\", "\x00") if c in name]
    if bad or ".." in name or os.path.isabs(name) or re.match(r"^[A-Za-z]:", name):
        raise FormatError(
            f"invalid {what} {name!r}: must be a plain file/folder name (no path separators or '..')"
        )
    return name


def dataset_parts(dataset: str) -> list[str]:
    """Split a (possibly nested, "Parent/Child") dataset name into checked components."""
    if not isinstance(dataset, str) or not dataset or dataset.startswith("/") or "\\" in dataset:
        raise FormatError(f"invalid dataset name {dataset!r}")
    return [check_name(p, "dataset name") for p in dataset.split("/")]


# ------------------------------------------------------------------------------------------------ model


@dataclass
class Item:
    name: str
    image_path: Path
    ann_path: Path
    dataset: str

    def read_image(self) -> np.ndarray:
        return read_image(self.image_path)

    def read_pixels(self) -> np.ndarray:
        return read_pixels(self.image_path)

    def read_annotation(self, meta: ProjectMeta) -> Annotation:
        return Annotation.from_json(load_json(self.ann_path), meta, file=self.ann_path)


@dataclass
class Dataset:
    name: str
    path: Path
    items: list[Item] = field(default_factory=list)

    def __len__(self):
        return len(self.items)


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def resolve_items(
    ds_name: str, ds_path: Path, problems: list | None = None, root: Path | None = None
) -> list[Item]:
    """Items of one dataset folder. Without ``problems`` the first problem raises FormatError; with a list,
    problems are appended (as FormatError) and the item is skipped. With the project ``root``, an image or
    annotation that is a link to a file outside it is refused."""

    def fail(msg, file):
        err = FormatError(msg, file=file)
        if problems is None:
            raise err
        problems.append(err)

    img_dir, ann_dir = ds_path / "img", ds_path / "ann"
    for d, what in ((img_dir, "item"), (ann_dir, "annotation")):
        if not d.is_dir():
            fail(f"{what} directory not found (dataset {ds_name!r} needs img/ and ann/)", d)
            return []
    items, used = [], {}
    for img in sorted(p for p in img_dir.iterdir() if p.is_file() and is_image_name(p.name)):
        candidates = (ann_dir / f"{img.name}.json", ann_dir / f"{img.stem}.json")
        ann = next((c for c in candidates if c.is_file()), None)
        if ann is None:
            fail(
                f"item {img.name!r} in dataset {ds_name!r} has no annotation file "
                f"(looked for ann/{img.name}.json and ann/{img.stem}.json)",
                img,
            )
            continue
        if ann in used:
            fail(f"images {used[ann]!r} and {img.name!r} resolve to the same annotation file", ann)
            continue
        used[ann] = img.name
        escaped = next((p for p in (img, ann) if _outside(p, root)), None)
        if escaped is not None:
            fail(
                f"{escaped.name} is a link to {escaped.resolve()}, outside the project folder {root} "
                "(copy the file into the project instead)",
                escaped,
            )
            continue
        items.append(Item(img.name, img, ann, ds_name))
    return items


def _outside(path: Path, root: Path | None) -> bool:
    """Whether ``path`` (through links) leads outside ``root``."""
    return root is not None and not path.resolve().is_relative_to(root.resolve())


def walk_datasets(root: Path, problems: list | None = None) -> list[Dataset]:
    """All datasets under a project folder, nested ones named "Parent/Child". A parent folder without images
    (only ``datasets/`` and perhaps empty img/ann or 0-byte placeholders) is a container, not a dataset."""
    out: list[Dataset] = []

    def visit(path: Path, name: str):
        nested = path / NESTED_DIR
        has_children = nested.is_dir()
        img_dir = path / "img"
        has_images = img_dir.is_dir() and any(
            p.is_file() and is_image_name(p.name) for p in img_dir.iterdir()
        )
        if has_images or not has_children:
            out.append(Dataset(name, path, resolve_items(name, path, problems, root)))
        if has_children:
            for child in sorted(p for p in nested.iterdir() if p.is_dir() and not p.name.startswith(".")):
                visit(child, f"{name}/{child.name}")

    for p in sorted(root.iterdir()):
        if p.is_dir() and not p.name.startswith("."):
            visit(p, p.name)
    return out


def meta_path_of(project_dir: Path) -> Path:
    """``meta.json``, or a 2018 V1 project's ``classes.json`` when only that exists."""
    meta_path = Path(project_dir) / META_FILE
    legacy = Path(project_dir) / LEGACY_CLASSES_FILE
    return legacy if not meta_path.is_file() and legacy.is_file() else meta_path


class Project:
    """A project folder read from disk: meta + datasets (annotations are parsed lazily, per item)."""

    def __init__(self, path: Path, meta: ProjectMeta | None = None, datasets: list[Dataset] | None = None):
        """``Project(path)`` reads the folder (as :meth:`read`); with ``meta`` and ``datasets`` it wraps them."""
        if meta is None and datasets is None:
            read = Project.read(path)
            meta, datasets = read.meta, read.datasets
        if meta is None or datasets is None:
            raise TypeError("give both meta and datasets, or neither (Project(path) reads the folder)")
        self.path = Path(path)
        self.name = self.path.name
        self.meta = meta
        self.datasets = datasets

    @classmethod
    def read(cls, path) -> Project:
        path = Path(path)
        if not path.is_dir():
            raise FormatError("project folder not found", file=path)
        meta_path = meta_path_of(path)
        if not meta_path.is_file():
            raise FormatError("meta.json not found (not a Supervisely project folder?)", file=meta_path)
        meta = ProjectMeta.from_json(load_json(meta_path), file=meta_path)
        return cls(path, meta, walk_datasets(path))

    def items(self) -> Iterator[Item]:
        for ds in self.datasets:
            yield from ds.items

    def __len__(self) -> int:
        return sum(len(ds.items) for ds in self.datasets)

    def get_dataset(self, name: str) -> Dataset | None:
        return next((d for d in self.datasets if d.name == name), None)

    def __repr__(self):
        return f"Project({str(self.path)!r}, datasets={len(self.datasets)}, items={len(self)})"


def _same_or_inside(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents or a in b.parents


class ProjectWriter:
    """Creates a NEW project folder. Refuses an existing non-empty folder unless ``allow_existing``, and always
    refuses a folder that is, contains or lies inside one of ``sources`` (the projects being read)."""

    def __init__(
        self, path, meta: ProjectMeta, *, allow_existing=False, sources: Iterable = (), resume: bool = False
    ):
        allow_existing = allow_existing or resume  # `resume` is an alias
        self.path = Path(path)
        for src in sources:
            if _same_or_inside(self.path, Path(src)):
                raise FormatError(f"refusing to write into the source project {src}", file=self.path)
        if self.path.exists():
            if not self.path.is_dir():
                raise FormatError("output path exists and is not a folder", file=self.path)
            if any(self.path.iterdir()) and not allow_existing:
                raise FormatError(
                    "output folder exists and is not empty (refusing to overwrite)", file=self.path
                )
        atomic.make_folder(self.path)
        self.meta = meta
        self._names: dict[str, set[str]] = {}
        self.write_meta(meta)

    def write_meta(self, meta: ProjectMeta | None = None) -> None:
        if meta is not None:
            self.meta = meta
        atomic_write_json(self.path / META_FILE, self.meta.to_json())

    def _dataset_path(self, dataset: str) -> Path:
        parts = dataset_parts(dataset)
        path = self.path / parts[0]
        for i, part in enumerate(parts):
            if i:
                path = path / NESTED_DIR / part
            atomic.make_folder(path / "img")
            atomic.make_folder(path / "ann")
        return path

    def add_item(self, dataset: str, name: str, image, ann: Annotation) -> Item:
        """Add one image + annotation. ``image`` is an RGB array (encoded by the name's extension) or a Path
        (hard-linked when possible, else copied). The annotation size must match the image."""
        check_name(name, "item name")
        if not is_image_name(name):
            raise FormatError(f"item name {name!r} must end with one of {', '.join(IMAGE_EXTENSIONS)}")
        names = self._names.setdefault(dataset, set())
        if name in names:
            raise FormatError(f"duplicate item {name!r} in dataset {dataset!r}")
        ds_path = self._dataset_path(dataset)
        img_path, ann_path = ds_path / "img" / name, ds_path / "ann" / f"{name}.json"
        if isinstance(image, (str, os.PathLike)):
            src = Path(image)
            h, w = image_size(src)
            self._check_size(ann, h, w, name)
            _link_or_copy(src, img_path)
        else:
            arr = np.asarray(image)
            self._check_size(ann, arr.shape[0], arr.shape[1], name)
            write_image(img_path, arr)
        atomic_write_json(ann_path, ann.to_json())
        names.add(name)
        return Item(name, img_path, ann_path, dataset)

    @staticmethod
    def _check_size(ann: Annotation, h: int, w: int, name: str) -> None:
        if (ann.height, ann.width) != (h, w):
            raise FormatError(
                f"annotation size {ann.height}x{ann.width} (HxW) does not match image {name!r} ({h}x{w})"
            )


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists() and dst.resolve() == src.resolve():
        raise FormatError("refusing to overwrite the source image with itself", file=dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        os.link(src, tmp)  # a hard link shares the source file (and its mode)
        os.replace(tmp, dst)
    except OSError:
        with open(src, "rb") as fh:
            atomic.write_file(dst, lambda out: shutil.copyfileobj(fh, out))
    finally:
        tmp.unlink(missing_ok=True)
