"""How the mask of one image becomes labels: binary masks (any value > 0, or by a threshold), class values
(a value->class table), ignore values (the neutral class) and instance folders (one mask file per object).

A binary mask holds 0 and one other value (1-bit {0, 1} and 8-bit {0, 255} masks may be mixed); a soft-edged
8-bit mask (anti-aliased edges, JPEG) holds more, and is cut at ``threshold`` (foreground where value >=
threshold, a 1-bit mask's 1 counting as 255), by default at :data:`DEFAULT_THRESHOLD` with one warning per import.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unetkit.errors import ConfigError, FormatError
from unetkit.project.annotation import Label
from unetkit.project.geometry import Bitmap
from unetkit.project.mask_files import is_mask_name, mask_to_labels, read_mask

DEFAULT_THRESHOLD = 128  # a soft-edged 8-bit binary mask without --threshold: foreground where value >= 128


def _values(values) -> str:
    return ", ".join(str(int(v)) for v in values)


@dataclass
class MaskRules:
    """The options that turn one mask (file, or instance folder) into labels; see :meth:`labels`.

    ``value_map``: value -> class title (None = background), else binary masks of class ``class_name``.
    ``ignore``: values whose pixels become the ``neutral`` class. ``instances``: every mask is a folder of
    binary masks, one object each, whose union is ``class_name``. ``soft`` collects the binary masks cut at
    the default threshold (:meth:`warn_soft` says so once).
    """

    class_name: str = "vessel"
    value_map: dict[int, str | None] | None = None
    threshold: int | None = None
    ignore: tuple[int, ...] = ()
    neutral: str = "neutral"
    instances: bool = False
    soft: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ignore = tuple(sorted({int(v) for v in self.ignore}))
        if self.threshold is not None and not 1 <= self.threshold <= 255:
            raise ConfigError(
                f"--threshold must be between 1 and 255 (foreground where value >= it), got {self.threshold}"
            )
        if self.value_map is not None and self.threshold is not None:
            raise ConfigError("--threshold cuts binary masks: it does not go with class values (--value-map)")
        if self.instances and (self.value_map is not None or self.ignore):
            raise ConfigError(
                "--instances masks are binary (one object each): no --value-map/--classes/--ignore"
            )
        if any(v < 0 for v in self.ignore):
            raise ConfigError(f"--ignore values must be non-negative integers, got {_values(self.ignore)}")
        if 0 in self.ignore and self.value_map is None:
            raise ConfigError("--ignore 0 would make the background of a binary mask neutral")
        both = [v for v in self.ignore if self.value_map and self.value_map.get(v)]
        if both:
            raise ConfigError(
                f"--ignore value(s) {_values(both)} are also classes ({', '.join(self.value_map[v] for v in both)}):"
                f" leave them out of the class list, ignored pixels become the neutral class {self.neutral!r}"
            )

    def titles(self) -> list[str]:
        """The project's classes from the masks, in order (the neutral class not included)."""
        if self.value_map is None:
            return [self.class_name]
        return list(dict.fromkeys(t for t in self.value_map.values() if t))

    def labels(
        self, path: Path, image: Path, shape: tuple[int, int]
    ) -> tuple[list[Label], np.ndarray | None]:
        """The labels of the mask ``path`` (a file, or with ``instances`` a folder) of ``image`` (``shape``),
        and the pixels of its ignore values (None when there are none)."""
        if self.instances:
            return self._instance_labels(path, image, shape), None
        mask = _sized(read_mask(path), image, shape, path)
        ignored = np.isin(mask, self.ignore) if self.ignore else None
        if ignored is not None and not ignored.any():
            ignored = None
        if self.value_map is not None:
            return mask_to_labels(
                mask, self.value_map, self.class_name, file=path, ignore=self.ignore
            ), ignored
        fg = self.foreground(mask if ignored is None else np.where(ignored, 0, mask), path)
        bitmap = Bitmap.from_full_mask(fg)
        return ([Label(self.class_name, bitmap)] if bitmap is not None else []), ignored

    def foreground(self, mask: np.ndarray, path: Path) -> np.ndarray:
        """The foreground of a binary mask: any value > 0 for {0, v}; by ``threshold``; or a soft-edged 8-bit
        mask by the default threshold (recorded in ``soft``); other masks are a FormatError."""
        top = int(mask.max()) if mask.size else 0
        if self.threshold is not None:
            return mask > 0 if top <= 1 else mask >= self.threshold  # 1-bit masks: 1 counts as 255
        values = np.unique(mask)
        if np.count_nonzero(values) <= 1:
            return mask > 0
        if mask.dtype.itemsize == 1 and top >= DEFAULT_THRESHOLD:
            self.soft.append(path)
            return mask >= DEFAULT_THRESHOLD
        shown = _values(values[:12]) + (", ..." if len(values) > 12 else "")
        raise FormatError(
            f"mask has values [{shown}]; a binary mask needs 0 and one other value: pass a value->class table "
            "(--value-map 1=road,2=car or --classes), or --threshold T for a soft-edged 8-bit mask",
            file=path,
        )

    def _instance_labels(self, folder: Path, image: Path, shape: tuple[int, int]) -> list[Label]:
        if not folder.is_dir():
            what = "not found" if not folder.exists() else "is a file, not a folder"
            raise FormatError(
                f"instance mask folder {what} (--instances: one mask file per object)", file=folder
            )
        union = np.zeros(shape, bool)
        for part in sorted(p for p in folder.iterdir() if p.is_file() and is_mask_name(p.name)):
            union |= self.foreground(_sized(read_mask(part), image, shape, part), part)
        bitmap = Bitmap.from_full_mask(union)
        return [Label(self.class_name, bitmap)] if bitmap is not None else []

    def warn_soft(self, total: int) -> None:
        """One warning naming how many binary masks (of ``total``) were cut at the default threshold."""
        if self.soft:
            warnings.warn(
                f"{len(self.soft)} of {total} binary mask file(s) hold more than two values (soft edges), e.g. "
                f"{self.soft[0]}: foreground where value >= {DEFAULT_THRESHOLD} (the default; --threshold T "
                "chooses another)",
                UserWarning,
                stacklevel=2,
            )


def _sized(mask: np.ndarray, image: Path, shape: tuple[int, int], path: Path) -> np.ndarray:
    if mask.shape != tuple(shape):
        raise FormatError(
            f"mask size {mask.shape[0]}x{mask.shape[1]} differs from image {image.name} ({shape[0]}x{shape[1]})",
            file=path,
        )
    return mask


def neutral_label(neutral: str, *masks: np.ndarray | None) -> Label | None:
    """One ``neutral`` bitmap over the union of ``masks`` (None entries skipped); None when it is empty."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    bitmap = Bitmap.from_full_mask(np.logical_or.reduce(present))
    return Label(neutral, bitmap) if bitmap is not None else None
