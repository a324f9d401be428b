"""Mask files as datasets ship them, and pairing images with their masks by a shared id.

A mask is read as a 2-D array of class values: PNG/BMP/GIF/WebP through Pillow, TIFF through tifffile (8/16-bit,
any compression). Palette images give their palette indices (VOC-style class values) unless every colour in use is
a shade of grey, then the grey levels (so a black/white GIF reads as 0/255 whatever its palette order). RGB(A)
masks are accepted when the colour channels agree.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from unetkit.errors import ConfigError, FormatError
from unetkit.project.annotation import Label
from unetkit.project.geometry import Bitmap

TIFF_EXTENSIONS = (".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".gif", ".tif", ".tiff", ".bmp", ".webp", ".jpg", ".jpeg")
SHOWN = 5  # file names listed in an error


def is_mask_name(name: str) -> bool:
    return Path(name).suffix.lower() in MASK_EXTENSIONS


def _palette_values(im: Image.Image) -> np.ndarray:
    index = np.asarray(im.convert("P") if im.mode == "PA" else im)
    palette = np.asarray(im.getpalette() or [], dtype=np.int64).reshape(-1, 3)
    used = np.unique(index)
    if used.size and used.max() < len(palette):
        colours = palette[used]
        if (colours == colours[:, :1]).all():  # grey palette: the grey levels
            return palette[:, 0][index]
    return index


def _tiff_array(path: Path) -> np.ndarray:
    """The first series of a TIFF as Y×X or Y×X×channels, whatever order the file keeps its axes in."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes, arr = series.axes, series.asarray()
    keep = [i for i, ax in enumerate(axes) if ax in "YX" or arr.shape[i] > 1]
    axes, arr = "".join(axes[i] for i in keep), arr.reshape([arr.shape[i] for i in keep])
    if "Y" not in axes or "X" not in axes or len(axes) > 3:
        raise FormatError(f"a mask must be a 2-D image: TIFF axes {axes}, shape {arr.shape}", file=path)
    return np.transpose(
        arr, [axes.index("Y"), axes.index("X")] + [i for i, ax in enumerate(axes) if ax not in "YX"]
    )


def _single_channel(arr: np.ndarray, path: Path) -> np.ndarray:
    """Y×X, or Y×X×channels whose colour channels agree (alpha is left out), → Y×X."""
    if arr.ndim == 3:
        chans = arr[:, :, :3] if arr.shape[-1] in (3, 4) else arr
        if not all(np.array_equal(chans[:, :, 0], chans[:, :, i]) for i in range(1, chans.shape[2])):
            raise FormatError(
                "colour masks are not supported: save one class value per pixel (grayscale or palette)",
                file=path,
            )
        arr = chans[:, :, 0]
    if arr.ndim != 2:
        raise FormatError(f"a mask must be a 2-D image, got an array of shape {arr.shape}", file=path)
    return arr


def read_mask(path) -> np.ndarray:
    """A mask file as a 2-D integer array (bool masks read as 0/1)."""
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_EXTENSIONS:
            arr = _tiff_array(path)
        else:
            with Image.open(path) as im:
                im.seek(0)
                arr = _palette_values(im) if im.mode in ("P", "PA") else np.asarray(im)
    except FileNotFoundError:
        raise FormatError("file not found", file=path) from None
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a broken file
        raise FormatError(f"cannot decode mask image: {type(exc).__name__}: {exc}", file=path) from None
    arr = _single_channel(np.asarray(arr), path)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise FormatError("a floating-point mask must hold whole class values", file=path)
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "ui" or (arr.dtype.kind == "i" and arr.size and arr.min() < 0):
        raise FormatError(f"mask values must be non-negative integers (got {arr.dtype})", file=path)
    return arr


def _ranges(values) -> str:
    """[0, 1, 2, 3, 7] -> '0..3, 7'."""
    out: list[str] = []
    for v in sorted(values):
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in out)


def mask_to_labels(
    mask: np.ndarray, value_map: dict | None, class_name: str, *, file=None, ignore=()
) -> list[Label]:
    """One bitmap label per class present in ``mask``.

    Without ``value_map`` the mask must be binary (0 and one other value: 0/1, 0/255): non-zero -> ``class_name``.
    With ``value_map`` (value -> class title, or None for background) every value must be in the table or in
    ``ignore`` (values left to the caller, e.g. for the neutral class); 0 not in the table is background.
    """
    values = np.unique(mask)
    if value_map is None:
        nonzero = [int(v) for v in values if v != 0 and int(v) not in ignore]
        if len(nonzero) > 1:
            raise FormatError(
                f"mask has values {[int(v) for v in values]}; a binary mask needs 0 and one other value — "
                "pass a value->class table (--value-map 1=road,2=car)",
                file=file,
            )
        value_map = {v: class_name for v in nonzero}
    unknown = [int(v) for v in values if int(v) not in value_map and v != 0 and int(v) not in ignore]
    if unknown:
        known = f"it has {_ranges(value_map)}" + (f", ignored {_ranges(ignore)}" if len(ignore) else "")
        raise FormatError(f"mask values {unknown} are not in the value->class table ({known})", file=file)
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


def compile_match(pattern: str) -> re.Pattern:
    """The ``--match`` regular expression; its first group is the id shared by an image and its masks."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"--match {pattern!r} is not a regular expression: {exc}") from None
    if regex.groups < 1:
        raise ConfigError(
            f"--match {pattern!r} needs a group: its first group is the shared id, e.g. '^(\\d+)_'"
        )
    return regex


def _listing(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def files_by_id(
    folder: Path, regex: re.Pattern, accept, what: str, *, folders: bool = False
) -> dict[str, Path]:
    """The files (with ``folders``: the sub-folders) of ``folder`` that ``accept`` (a name test) by the id
    ``regex`` finds in their names."""
    out: dict[str, Path] = {}
    unmatched, twice = [], []
    kind = Path.is_dir if folders else Path.is_file
    for path in sorted(p for p in folder.iterdir() if kind(p) and accept(p.name)):
        found = regex.search(path.name)
        if found is None or not found.group(1):
            unmatched.append(path.name)
        elif found.group(1) in out:
            twice.append(f"{out[found.group(1)].name} and {path.name} (id {found.group(1)})")
        else:
            out[found.group(1)] = path
    if unmatched:
        raise FormatError(
            f"--match {regex.pattern!r} finds no id in {len(unmatched)} {what} name(s): {_listing(unmatched)}",
            file=folder,
        )
    if twice:
        raise FormatError(f"{what}s share an id: {_listing(twice)}", file=folder)
    return out


def check_paired(images: dict[str, Path], others: dict[str, Path], what: str, folder: Path) -> None:
    """FormatError naming a few unpaired files when ``images`` and ``others`` (id -> file) differ in ids."""
    lonely = [f"{p.name} (id {i})" for i, p in images.items() if i not in others]
    if lonely:
        raise FormatError(f"no {what} for {len(lonely)} image(s): {_listing(lonely)}", file=folder)
    extra = [f"{p.name} (id {i})" for i, p in others.items() if i not in images]
    if extra:
        raise FormatError(f"{len(extra)} {what}(s) have no image: {_listing(extra)}", file=folder)
