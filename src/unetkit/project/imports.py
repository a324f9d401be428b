"""Import plain image + mask folders (CHASE DB1, generic class-value masks, MVTec AD) into a project.

Each class present in a mask becomes ONE bitmap object (the whole class region, possibly disconnected), so
``rasterize`` of the imported annotation gives back the source mask exactly.
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np

from unetkit.errors import FormatError
from unetkit.project.annotation import Annotation, Label, Tag
from unetkit.project.geometry import Bitmap
from unetkit.project.io import IMAGE_EXTENSIONS, Project, ProjectWriter, check_name, image_size, is_image_name
from unetkit.project.meta import ObjClass, ProjectMeta, TagMeta, random_color

CHASE_MASK_SUFFIX = "_1stHO"
MASK_EXTENSIONS = IMAGE_EXTENSIONS + (".tif", ".tiff", ".gif")
_PALETTE = ("#FF0000", "#00FF00", "#0000FF", "#FFFF00", "#FF00FF", "#00FFFF", "#FF8000", "#8000FF")


def class_colors(names) -> dict[str, str]:
    """Deterministic distinct colours for new classes (fixed palette, then seeded random)."""
    rng = random.Random(0)
    return {n: (_PALETTE[i] if i < len(_PALETTE) else random_color(rng)) for i, n in enumerate(names)}


def read_mask(path: Path) -> np.ndarray:
    """Read a mask file as a 2-D integer array (grayscale/1-bit/16-bit; RGB only when all channels agree)."""
    mask = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise FormatError("cannot decode mask image", file=path)
    if mask.ndim == 3:
        chans = mask[:, :, :3]
        if not (
            np.array_equal(chans[:, :, 0], chans[:, :, 1]) and np.array_equal(chans[:, :, 0], chans[:, :, 2])
        ):
            raise FormatError(
                "colour masks are not supported: save one class value per pixel (grayscale)", file=path
            )
        mask = chans[:, :, 0]
    return mask


def mask_to_labels(mask: np.ndarray, value_map: dict | None, class_name: str, *, file=None) -> list[Label]:
    """One bitmap label per class present in ``mask``.

    Without ``value_map`` the mask must be binary (0 and one other value: 0/1, 0/255): non-zero -> ``class_name``.
    With ``value_map`` (value -> class title, or None for background) every value must be in the table.
    """
    values = np.unique(mask)
    if value_map is None:
        nonzero = [int(v) for v in values if v != 0]
        if len(nonzero) > 1:
            raise FormatError(
                f"mask has values {[int(v) for v in values]}; a binary mask needs 0 and one other value — "
                "pass a value->class table (--value-map 1=road,2=car)",
                file=file,
            )
        value_map = {v: class_name for v in nonzero}
    unknown = [int(v) for v in values if int(v) not in value_map and v != 0]
    if unknown:
        raise FormatError(f"mask values {unknown} are not in the value->class table", file=file)
    by_class: dict[str, np.ndarray] = {}
    for v in values:
        title = value_map.get(int(v))
        if title is None:
            continue
        m = mask == v
        by_class[title] = by_class[title] | m if title in by_class else m
    labels = []
    for title in dict.fromkeys(t for t in value_map.values() if t is not None):
        if title in by_class:
            bm = Bitmap.from_full_mask(by_class[title])
            if bm is not None:
                labels.append(Label(title, bm))
    return labels


def _split_tags(names: list[str], tag, split, seed) -> dict[str, list[Tag]]:
    tags = {n: ([Tag(tag)] if tag else []) for n in names}
    if split is not None:
        if not 0 < split < 1:
            raise FormatError(f"split ratio must be between 0 and 1 (exclusive), got {split}")
        order = sorted(names)
        random.Random(seed).shuffle(order)
        n_train = min(max(int(round(split * len(order))), 1), max(len(order) - 1, 1))
        for i, n in enumerate(order):
            tags[n].append(Tag("train" if i < n_train else "val"))
    return tags


def _tag_metas(tag, split) -> list[TagMeta]:
    names = ([tag] if tag else []) + (["train", "val"] if split is not None else [])
    colors = {"train": "#00FF00", "val": "#0000FF"}
    return [TagMeta(n, color=colors.get(n, "#A0A08C")) for n in dict.fromkeys(names)]


def _derived(stem: str, stems: set) -> bool:
    parts = stem.split("_")
    return any("_".join(parts[:i]) in stems for i in range(1, len(parts)))


def _find_mask(masks_dir: Path, stem: str, suffix: str) -> Path | None:
    for ext in (".png",) + tuple(e for e in MASK_EXTENSIONS if e != ".png"):
        for cand in (masks_dir / f"{stem}{suffix}{ext}", masks_dir / f"{stem}{suffix}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def import_masks(
    images_dir,
    masks_dir,
    out_dir,
    class_name="vessel",
    *,
    mask_suffix="",
    value_map=None,
    tag=None,
    split=None,
    seed=0,
    dataset="ds0",
) -> Project:
    """Import ``images_dir`` + ``masks_dir`` (mask of ``X.jpg`` is ``X<mask_suffix>.png``) into a new project.

    CHASE DB1 (images and ``*_1stHO.png`` masks in one folder) is recognised when no suffix is given.
    ``tag`` tags every image; ``split`` (train fraction) tags a seeded random part ``train`` and the rest ``val``.
    """
    images_dir, masks_dir, out_dir = Path(images_dir), Path(masks_dir), Path(out_dir)
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise FormatError("folder not found", file=d)
    same = images_dir.resolve() == masks_dir.resolve()
    if same and not mask_suffix:
        if any(images_dir.glob(f"*{CHASE_MASK_SUFFIX}.png")):
            mask_suffix = CHASE_MASK_SUFFIX
        else:
            raise FormatError("images and masks are in the same folder: give --mask-suffix", file=images_dir)
    images = sorted(p for p in images_dir.iterdir() if p.is_file() and is_image_name(p.name))
    if same:  # masks (and other derived files such as CHASE's *_2ndHO.png) are "<image stem>_<something>"
        stems = {p.stem for p in images}
        images = [p for p in images if not p.stem.endswith(mask_suffix) and not _derived(p.stem, stems)]
    if not images:
        raise FormatError("no images found", file=images_dir)
    pairs, missing = [], []
    for img in images:
        check_name(img.name, "image name")
        mask = _find_mask(masks_dir, img.stem, mask_suffix)
        (pairs.append((img, mask)) if mask else missing.append(img.name))
    if missing:
        raise FormatError(
            f"no mask '<stem>{mask_suffix}.png' for {len(missing)} image(s): {', '.join(missing[:5])}",
            file=masks_dir,
        )
    class_titles = (
        [class_name] if value_map is None else list(dict.fromkeys(v for v in value_map.values() if v))
    )
    colors = class_colors(class_titles)
    meta = ProjectMeta([ObjClass(t, "bitmap", colors[t]) for t in class_titles], _tag_metas(tag, split))
    tags = _split_tags([p.name for p in images], tag, split, seed)
    writer = ProjectWriter(out_dir, meta, sources=[images_dir, masks_dir])
    for img, mask_path in pairs:
        mask = read_mask(mask_path)
        h, w = image_size(img)
        if mask.shape != (h, w):
            raise FormatError(
                f"mask size {mask.shape[0]}x{mask.shape[1]} differs from image {img.name} ({h}x{w})",
                file=mask_path,
            )
        labels = mask_to_labels(mask, value_map, class_name, file=mask_path)
        writer.add_item(dataset, img.name, img, Annotation(h, w, labels, tags[img.name]))
    return Project.read(out_dir)


def import_mvtec(
    category_dir, out_dir, class_name="defect", *, per_defect_classes=False, tag_splits=True
) -> Project:
    """Import one MVTec AD category: ``train/good`` -> dataset ``train``; ``test/<defect>`` -> dataset ``test``
    (items ``<defect>_<name>``) with masks ``ground_truth/<defect>/<stem>_mask.png``. Good images get
    annotations without objects. Image tags: ``train``/``test`` (when ``tag_splits``) and ``defect`` = type.
    With ``per_defect_classes`` each defect type is its own class, otherwise all are ``class_name``."""
    root, out_dir = Path(category_dir), Path(out_dir)
    if not ((root / "train" / "good").is_dir() or (root / "ground_truth").is_dir()):
        raise FormatError("not an MVTec AD category folder (no train/good or ground_truth folder)", file=root)
    entries = []  # (dataset, item name, image path, mask path | None, defect)
    for split in ("train", "test"):
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for defect_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            defect = defect_dir.name
            for img in sorted(p for p in defect_dir.iterdir() if p.is_file() and is_image_name(p.name)):
                mask = None
                if defect != "good":
                    mask = _find_mask(root / "ground_truth" / defect, img.stem, "_mask")
                    if mask is None:
                        raise FormatError(
                            f"no mask ground_truth/{defect}/{img.stem}_mask.png for this image", file=img
                        )
                name = img.name if split == "train" else f"{defect}_{img.name}"
                entries.append((split, name, img, mask, defect))
    if not entries:
        raise FormatError(
            "not an MVTec AD category folder (no train/good or test/<defect> images)", file=root
        )
    defects = sorted({e[4] for e in entries if e[4] != "good"})
    titles = defects if per_defect_classes else [class_name]
    colors = class_colors(titles)
    tag_metas = [TagMeta("defect", "any_string", color="#A0A08C")]
    if tag_splits:
        tag_metas += [TagMeta("train", color="#00FF00"), TagMeta("test", color="#0000FF")]
    meta = ProjectMeta([ObjClass(t, "bitmap", colors[t]) for t in titles], tag_metas)
    writer = ProjectWriter(out_dir, meta, sources=[root])
    for split, name, img, mask_path, defect in entries:
        h, w = image_size(img)
        labels = []
        if mask_path is not None:
            mask = read_mask(mask_path)
            if mask.shape != (h, w):
                raise FormatError(f"mask size differs from image {img.name} ({h}x{w})", file=mask_path)
            title = defect if per_defect_classes else class_name
            labels = mask_to_labels(mask, None, title, file=mask_path)
        tags = [Tag("defect", defect)] + ([Tag(split)] if tag_splits else [])
        writer.add_item(split, name, img, Annotation(h, w, labels, tags))
    return Project.read(out_dir)
