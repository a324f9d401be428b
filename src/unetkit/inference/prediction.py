"""What inference takes and gives: images as pixel arrays, the network pass a :class:`Predictor` calls, and the
:class:`Prediction` of one image."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetkit.errors import UnetkitError
from unetkit.models.card import ModelClass

# The network pass a Predictor calls (the ``network`` argument of its methods): N×C×h×w normalised input →
# N×K×h×w probabilities (softmax, or sigmoids for multi-label models). Default: the backend's ``probabilities``.
Network = Callable[[np.ndarray], np.ndarray]


def load_image(image) -> np.ndarray:
    """numpy array / PIL image / path → pixels H×W×C (native bit depth and channel count)."""
    from unetkit.project.images import as_pixels, read_pixels

    if isinstance(image, (str, Path)):
        return read_pixels(image)
    if not isinstance(image, np.ndarray):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None
        if Image is None or not isinstance(image, Image.Image):
            raise UnetkitError(f"unsupported image type {type(image).__name__}")
        image = np.asarray(image.convert("RGB") if image.mode in ("P", "CMYK", "YCbCr") else image)
    try:
        return as_pixels(image)
    except UnetkitError as exc:
        raise UnetkitError(f"unsupported image: {exc.message}") from None


@dataclass
class Prediction:
    """One image's mask and probabilities, made with a model's inference settings (mode, TTA, threshold, clean-up)."""

    mask: np.ndarray  # H×W class indices (uint8, or uint16 for > 256 classes); multi-label: H×W×K bool
    probabilities: (
        np.ndarray
    )  # H×W×C float32, softmax or sigmoids (bicubic resizes may slightly leave [0, 1])
    classes: list[ModelClass]
    multilabel: bool = False

    def class_mask(self, index: int) -> np.ndarray:
        """H×W bool: the pixels of the class with output index ``index``."""
        return self.mask[:, :, index] if self.multilabel else self.mask == index
