"""The data element that flows through a DTL graph: a lazy image plus an annotation and its origin."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from unetkit.project import Annotation


class ImageRef:
    """Lazy image: the source file path until a layer changes pixels, then a pixel array (H×W×C)."""

    __slots__ = ("path", "_array", "_modified")

    def __init__(self, path: Path | None = None, array: np.ndarray | None = None):
        if path is None and array is None:
            raise ValueError("ImageRef needs a path or an array")
        self.path = None if path is None else Path(path)
        self._array = array
        self._modified = array is not None

    @staticmethod
    def from_array(arr: np.ndarray) -> ImageRef:
        """An image built by a layer (its pixels differ from any file); kept at its bit depth and channels."""
        from unetkit.project.images import as_pixels

        return ImageRef(array=np.ascontiguousarray(as_pixels(arr)))

    @property
    def modified(self) -> bool:
        """True once built from an array (the output must be re-encoded, not copied)."""
        return self._modified

    def get(self) -> np.ndarray:
        """Pixels H×W×C at the file's own bit depth and channel count; read once and cached."""
        if self._array is None:
            from unetkit.project.images import read_pixels

            self._array = read_pixels(self.path)
        return self._array

    def __getstate__(self):
        # An unmodified image travels between processes as its path only.
        return (self.path, self._array if self._modified else None, self._modified)

    def __setstate__(self, state):
        self.path, self._array, self._modified = state

    def __repr__(self) -> str:
        return f"ImageRef(path={self.path!s}, modified={self._modified})"


@dataclass
class Element:
    """One image + annotation travelling through the graph.

    Layers never mutate ``ann`` in place: they build new objects with ``ann.clone(...)`` / new labels
    and return ``el.replace(ann=..., image=...)``.
    """

    image: ImageRef
    ann: Annotation
    project: str
    dataset: str
    item_name: str
    out_dataset: str | None = None
    lineage: tuple = ()
    dropped: int = 0  # objects a geometric layer could not transform and left out (counted in the run report)

    def replace(self, **changes) -> Element:
        return dataclasses.replace(self, **changes)

    @property
    def stem(self) -> str:
        """Source file name without its extension ("Image_01L")."""
        return PurePosixPath(self.item_name).stem

    @property
    def ext(self) -> str:
        """Source file extension with the dot (".jpg")."""
        return PurePosixPath(self.item_name).suffix

    @property
    def identity(self) -> tuple:
        """Identity of this element: its origin plus the path it took through the graph."""
        return (self.project, self.dataset, self.item_name, self.lineage)
