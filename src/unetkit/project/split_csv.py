"""Pairing images with masks by a csv file (``image,mask[,split]``), as datasets ship their official splits."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

from unetkit.errors import FormatError
from unetkit.project.io import check_name, is_image_name
from unetkit.project.mask_files import is_mask_name


class SplitRow(NamedTuple):
    image: Path
    mask: Path
    split: str  # "" when the csv has no split column or the cell is empty


def read_split_csv(path, *, instances: bool = False) -> list[SplitRow]:
    """The rows of a csv with columns ``image`` and ``mask`` (paths relative to the csv's folder) and optionally
    ``split`` (train/val/test: a tag of the image). With ``instances`` every mask is a folder of masks, one per
    object; otherwise a mask file. Every problem is a FormatError naming the csv and its line."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            if "image" not in columns or "mask" not in columns:
                raise FormatError(
                    f"a split csv needs the columns image,mask[,split]; it has {','.join(columns) or 'none'}",
                    file=path,
                )
            rows = [
                (reader.line_num, {k.strip(): (v or "").strip() for k, v in r.items() if k}) for r in reader
            ]
    except FileNotFoundError:
        raise FormatError("split csv not found", file=path) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FormatError(f"cannot read the split csv: {exc}", file=path) from None
    root, out, seen = path.parent, [], {}
    for line, row in rows:
        where = f"line {line}"
        if not row.get("image") or not row.get("mask"):
            raise FormatError(f"{where}: an empty image or mask cell", file=path)
        image, mask = root / row["image"], root / row["mask"]
        if not image.is_file() or not is_image_name(image.name):
            raise FormatError(f"{where}: image {row['image']} {_missing(image)}", file=path)
        check_name(image.name, "image name")
        if image.name in seen:
            raise FormatError(
                f"{where}: image name {image.name} is also on line {seen[image.name]} (names must be unique)",
                file=path,
            )
        seen[image.name] = line
        if instances and not mask.is_dir():
            raise FormatError(
                f"{where}: mask {row['mask']} is not a folder (--instances: a folder of masks, one per object)",
                file=path,
            )
        if not instances and mask.is_dir():
            raise FormatError(
                f"{where}: mask {row['mask']} is a folder: give --instances for one mask file per object",
                file=path,
            )
        if not instances and (not mask.is_file() or not is_mask_name(mask.name)):
            raise FormatError(f"{where}: mask {row['mask']} {_missing(mask)}", file=path)
        out.append(SplitRow(image, mask, row.get("split", "")))
    if not out:
        raise FormatError("the split csv lists no images", file=path)
    return out


def _missing(path: Path) -> str:
    return "not found" if not path.exists() else f"is of no known type ({path.suffix or 'no extension'})"
