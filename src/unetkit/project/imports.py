"""Import plain image + mask folders (CHASE DB1, generic class-value masks, MVTec AD) into a project.

Each class present in a mask becomes ONE bitmap object (the whole class region, possibly disconnected), so
``rasterize`` of the imported annotation gives back the source mask exactly.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from unetkit.errors import ConfigError, FormatError
from unetkit.project.annotation import Annotation, Tag
from unetkit.project.io import Project, ProjectWriter, check_name, image_size, is_image_name
from unetkit.project.mask_files import (
    MASK_EXTENSIONS,
    check_paired,
    compile_match,
    files_by_id,
    is_mask_name,
    mask_to_labels,
    read_mask,
)
from unetkit.project.mask_labels import MaskRules, neutral_label
from unetkit.project.meta import ObjClass, ProjectMeta, TagMeta, random_color
from unetkit.project.output_folder import new_output_folder
from unetkit.project.split_csv import read_split_csv

CHASE_MASK_SUFFIX = "_1stHO"
NEUTRAL_COLOR = "#808080"
_PALETTE = ("#FF0000", "#00FF00", "#0000FF", "#FFFF00", "#FF00FF", "#00FFFF", "#FF8000", "#8000FF")


def class_colors(names) -> dict[str, str]:
    """Deterministic distinct colours for new classes (fixed palette, then seeded random)."""
    rng = random.Random(0)
    return {n: (_PALETTE[i] if i < len(_PALETTE) else random_color(rng)) for i, n in enumerate(names)}


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


_TAG_COLORS = {"train": "#00FF00", "val": "#0000FF", "test": "#FF0000"}


def _tag_metas(names) -> list[TagMeta]:
    return [TagMeta(n, color=_TAG_COLORS.get(n, "#A0A08C")) for n in dict.fromkeys(names)]


def _derived(stem: str, stems: set) -> bool:
    parts = stem.split("_")
    return any("_".join(parts[:i]) in stems for i in range(1, len(parts)))


def _find_mask(masks_dir: Path, stem: str, suffix: str) -> Path | None:
    for ext in (".png",) + tuple(e for e in MASK_EXTENSIONS if e != ".png"):
        for cand in (masks_dir / f"{stem}{suffix}{ext}", masks_dir / f"{stem}{suffix}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def _pairs_by_stem(
    images_dir: Path, masks_dir: Path, mask_suffix: str, instances: bool = False
) -> list[tuple[Path, Path]]:
    same = images_dir.resolve() == masks_dir.resolve()
    if same and not mask_suffix and not instances:
        if any(images_dir.glob(f"*{CHASE_MASK_SUFFIX}.png")):
            mask_suffix = CHASE_MASK_SUFFIX
        else:
            raise FormatError("images and masks are in the same folder: give --mask-suffix", file=images_dir)
    images = sorted(p for p in images_dir.iterdir() if p.is_file() and is_image_name(p.name))
    if same and not instances:  # masks (and derived files such as CHASE's *_2ndHO.png): "<image stem>_<...>"
        stems = {p.stem for p in images}
        images = [p for p in images if not p.stem.endswith(mask_suffix) and not _derived(p.stem, stems)]
    if not images:
        raise FormatError("no images found", file=images_dir)
    pairs, missing = [], []
    for img in images:
        folder = masks_dir / f"{img.stem}{mask_suffix}"
        mask = (
            (folder if folder.is_dir() else None)
            if instances
            else _find_mask(masks_dir, img.stem, mask_suffix)
        )
        (pairs.append((img, mask)) if mask else missing.append(img.name))
    if missing:
        wanted = (
            f"instance mask folder '<stem>{mask_suffix}/'" if instances else f"mask '<stem>{mask_suffix}.png'"
        )
        raise FormatError(
            f"no {wanted} for {len(missing)} image(s): {', '.join(missing[:5])}",
            file=masks_dir,
        )
    return pairs


def _fov_by_stem(fov_dir: Path, images: list[Path], fov_suffix: str) -> dict[Path, Path]:
    found = {img: _find_mask(fov_dir, img.stem, fov_suffix) for img in images}
    missing = [img.name for img, fov in found.items() if fov is None]
    if missing:
        raise FormatError(
            f"no field-of-view mask '<stem>{fov_suffix}.png' for {len(missing)} image(s): {', '.join(missing[:5])}",
            file=fov_dir,
        )
    return found


def _pairs_by_match(images_dir: Path, masks_dir: Path, fov_dir, match: str, instances: bool):
    folders = [d.resolve() for d in (images_dir, masks_dir, fov_dir) if d is not None]
    if len(set(folders)) != len(folders):
        raise FormatError("with --match, images, masks and field-of-view masks need folders of their own")
    regex = compile_match(match)
    by_id = files_by_id(images_dir, regex, is_image_name, "image")
    if not by_id:
        raise FormatError("no images found", file=images_dir)
    if instances:
        masks = files_by_id(
            masks_dir, regex, lambda n: not n.startswith("."), "instance mask folder", folders=True
        )
    else:
        masks = files_by_id(masks_dir, regex, is_mask_name, "mask")
    check_paired(by_id, masks, "instance mask folder" if instances else "mask", masks_dir)
    fovs = {}
    if fov_dir is not None:
        fov_by_id = files_by_id(fov_dir, regex, is_mask_name, "field-of-view mask")
        check_paired(by_id, fov_by_id, "field-of-view mask", fov_dir)
        fovs = {img: fov_by_id[i] for i, img in by_id.items()}
    return [(img, masks[i]) for i, img in by_id.items()], fovs


def _read_fov(fov_path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The pixels outside the field of view (mask value 0)."""
    fov = read_mask(fov_path)
    if fov.shape != shape:
        raise FormatError(
            f"field-of-view mask size {fov.shape[0]}x{fov.shape[1]} differs from its image ({shape[0]}x{shape[1]})",
            file=fov_path,
        )
    return fov == 0


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
    match: str | None = None,
    fov_dir=None,
    fov_suffix: str = "",
    neutral: str = "neutral",
    threshold: int | None = None,
    ignore=(),
    instances: bool = False,
    split_csv=None,
) -> Project:
    """Import ``images_dir`` + ``masks_dir`` (or the pairs of ``split_csv``) into a new project.

    Pairing: the mask of ``X.jpg`` is ``X<mask_suffix>.<ext>``; with ``match`` (a regular expression) an image
    and a mask pair when the first group of ``match`` finds the same id in both names (DRIVE: ``^(\\d+)_`` pairs
    ``21_training.tif`` with ``21_manual1.gif``). CHASE DB1 (images and ``*_1stHO.png`` masks in one folder) is
    recognised when neither is given. ``split_csv`` (then ``images_dir`` and ``masks_dir`` are None): a csv of
    ``image,mask[,split]`` paths relative to its folder; each image is tagged with its ``split`` value.
    ``fov_dir``: field-of-view masks (paired by ``fov_suffix`` or ``match``); the pixels outside (value 0)
    become one ``neutral`` object, which training and evaluation ignore. ``tag`` tags every image; ``split``
    (train fraction) tags a seeded random part ``train``, the rest ``val``.

    Masks: binary (any value > 0 is ``class_name``; ``threshold``: value >= threshold; soft-edged 8-bit masks
    without one are cut at 128 with a warning), class values by ``value_map`` (value -> title, None =
    background), ``ignore`` values -> ``neutral``, or with ``instances`` a folder of binary masks per image
    (one per object; the union is ``class_name``). See :mod:`unetkit.project.mask_labels`.
    """
    rules = MaskRules(class_name, value_map, threshold, tuple(ignore), neutral, instances)
    out_dir = Path(out_dir)
    fov_dir = Path(fov_dir) if fov_dir is not None else None
    split_of: dict[Path, str] = {}
    if split_csv is not None:
        if images_dir is not None or masks_dir is not None or match is not None or split is not None:
            raise ConfigError(
                "--split-csv pairs and splits the images itself: no --images/--masks/--match/--split"
            )
        if fov_dir is not None and not fov_dir.is_dir():
            raise FormatError("folder not found", file=fov_dir)
        rows = read_split_csv(split_csv, instances=instances)
        pairs = [(r.image, r.mask) for r in rows]
        split_of = {r.image: r.split for r in rows if r.split}
        fovs = _fov_by_stem(fov_dir, [img for img, _ in pairs], fov_suffix) if fov_dir is not None else {}
        sources = list(dict.fromkeys(p.parent for pair in pairs for p in pair))  # the folders read from
        sources += [fov_dir] if fov_dir is not None else []
    else:
        if images_dir is None or masks_dir is None:
            raise ConfigError("give --images and --masks, or --split-csv")
        images_dir, masks_dir = Path(images_dir), Path(masks_dir)
        sources = [d for d in (images_dir, masks_dir, fov_dir) if d is not None]
        for d in sources:
            if not d.is_dir():
                raise FormatError("folder not found", file=d)
        if match is not None:
            pairs, fovs = _pairs_by_match(images_dir, masks_dir, fov_dir, match, instances)
        else:
            pairs = _pairs_by_stem(images_dir, masks_dir, mask_suffix, instances)
            fovs = _fov_by_stem(fov_dir, [img for img, _ in pairs], fov_suffix) if fov_dir is not None else {}
    for img, _ in pairs:
        check_name(img.name, "image name")
    class_titles = rules.titles()
    colors = class_colors(class_titles)
    classes = [ObjClass(t, "bitmap", colors[t]) for t in class_titles]
    if (fovs or rules.ignore) and neutral not in class_titles:
        classes.append(ObjClass(neutral, "bitmap", NEUTRAL_COLOR))
    names = [img.name for img, _ in pairs]
    tags = _split_tags(names, tag, split, seed)
    for img, value in split_of.items():
        if value != tag:
            tags[img.name].append(Tag(value))
    tag_names = [tag] if tag else []
    tag_names += ["train", "val"] if split is not None else list(dict.fromkeys(split_of.values()))
    meta = ProjectMeta(classes, _tag_metas(tag_names))
    with new_output_folder(out_dir, sources=sources) as staging:  # a failed import leaves nothing
        writer = ProjectWriter(staging, meta)
        for img, mask_path in pairs:
            h, w = image_size(img)
            labels, ignored = rules.labels(mask_path, img, (h, w))
            outside = _read_fov(fovs[img], (h, w)) if img in fovs else None
            extra = neutral_label(neutral, ignored, outside)
            labels += [extra] if extra is not None else []  # drawn last: wins over the mask's classes
            writer.add_item(dataset, img.name, img, Annotation(h, w, labels, tags[img.name]))
    rules.warn_soft(len(pairs))
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
    with new_output_folder(out_dir, sources=[root]) as staging:  # a failed import leaves nothing
        writer = ProjectWriter(staging, meta)
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
