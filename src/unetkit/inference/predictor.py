"""`Predictor`: one trained model applied to images, with the same preprocessing as training.

pixels → the model's channels → bicubic resize to the card's input size → ÷scale, mean/std normalisation → forward →
softmax → probabilities resized back to the image size (bicubic) → argmax. (The original resized the input
bilinearly at inference although it trained with bicubic; unetkit uses bicubic for both, see docs/inference.md.)
Multi-label models (the card says ``multilabel``) use one sigmoid per class instead of the softmax, and a class is
present where its probability is ≥ 0.5, independently of the others.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from unetkit.errors import UnetkitError
from unetkit.inference.backends import OnnxBackend, TorchBackend, resolve_device
from unetkit.inference.labelsets import DEFAULT_THRESHOLD
from unetkit.models.card import ONNX_METADATA_KEY, ModelCard, ModelClass
from unetkit.models.preprocess import conform_channels, normalize, resize_image


@dataclass
class Prediction:
    mask: np.ndarray  # H×W class indices (uint8, or uint16 for > 256 classes); multi-label: H×W×K bool
    probabilities: (
        np.ndarray
    )  # H×W×C float32, softmax or sigmoids (after the bicubic resize back; may slightly leave [0, 1])
    classes: list[ModelClass]
    multilabel: bool = False

    def class_mask(self, index: int) -> np.ndarray:
        """H×W bool: the pixels of the class with output index ``index``."""
        return self.mask[:, :, index] if self.multilabel else self.mask == index


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


class Predictor:
    """Apply a segmentation model to images: class-index masks, probabilities, Supervisely annotations."""

    def __init__(self, backend, card: ModelCard, *, tta: bool = False):
        self.backend = backend
        self.card = card
        self.tta = tta
        # views of the card read on every image
        self.classes = card.classes.classes
        self.class_title_to_idx = dict(card.classes.class_title_to_idx)
        self.num_classes = card.num_classes
        self.input_size = card.preprocessing.input_size  # (width, height)
        self.mean, self.std = card.preprocessing.mean, card.preprocessing.std
        self.resize = card.preprocessing.resize
        self.in_channels = card.in_channels
        self.multilabel = card.classes.multilabel
        backend.activation = card.classes.activation  # the card decides: softmax, or sigmoids (multi-label)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(
        cls,
        checkpoint_dir,
        device: str | None = "cpu",
        backend: str = "torch",
        amp: str | bool = "auto",
        tta: bool = False,
        onnx_path=None,
        gpu_device: int = 0,
        compile: str = "off",
    ) -> Predictor:
        """Load a checkpoint folder. ``backend="onnxruntime"`` uses ``onnx_path`` or exports the model first (fp32).
        ``amp``: auto / off / bf16 / fp16 (:mod:`unetkit.models.numerics`); ``compile``: off / on / auto."""
        from unetkit.models.checkpoint import load_checkpoint, read_card

        dev = resolve_device(device, gpu_device)
        if backend == "torch":
            loaded = load_checkpoint(checkpoint_dir, map_location=str(dev))
            card, engine = loaded.card, TorchBackend(loaded.model, dev, amp, compile)
        elif backend == "onnxruntime":
            card = read_card(checkpoint_dir)
            if onnx_path is None:
                from unetkit.inference.export import export_onnx

                tmp = Path(tempfile.mkdtemp(prefix="unetkit-onnx-"))
                try:  # the session holds the model in memory: the exported file is not needed after loading
                    engine = OnnxBackend(export_onnx(checkpoint_dir, tmp / "model.onnx"), dev)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
            else:
                engine = OnnxBackend(onnx_path, dev)
        else:
            raise UnetkitError(f"unknown backend {backend!r}; expected torch or onnxruntime")
        return cls(engine, card, tta=tta)

    @classmethod
    def from_onnx(
        cls, path, device: str | None = "cpu", tta: bool = False, threads: int | None = None
    ) -> Predictor:
        """Load an exported ONNX file; its model card comes from the file's ``unetkit`` metadata."""
        engine = OnnxBackend(path, resolve_device(device), threads=threads)
        card = ModelCard.from_onnx_metadata(engine.metadata.get(ONNX_METADATA_KEY), file=path)
        return cls(engine, card, tta=tta)

    # ------------------------------------------------------------------ core
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """Pixels → float32 C×h×w at the model input size, normalised exactly as in training."""
        w, h = self.input_size
        p = self.card.preprocessing
        x = conform_channels(image, self.in_channels)
        if x.dtype != p.pixel_type:
            raise UnetkitError(f"the image has {x.dtype} pixels, but the model was trained on {p.pixel_type}")
        x = resize_image(x, w, h, self.resize)
        return normalize(x, p.mean, p.std, p.scale)

    def forward(self, batch: np.ndarray, network: Network | None = None) -> np.ndarray:
        """N×C×h×w normalised input → N×K×h×w probabilities (averaged over flips with TTA).

        ``network`` is the network pass the flips go around (default: this predictor's backend); serving
        plugs its micro-batcher in here.
        """
        network = network or self.backend.probabilities
        if not self.tta:
            return network(batch)
        flips = [(), (3,), (2,), (2, 3)]
        stacked = np.concatenate([np.flip(batch, axis=f) if f else batch for f in flips], axis=0)
        probs = network(np.ascontiguousarray(stacked))
        n = batch.shape[0]
        out = np.zeros_like(probs[:n])
        for i, f in enumerate(flips):
            part = probs[i * n : (i + 1) * n]
            out += np.flip(part, axis=f) if f else part
        return out / len(flips)

    def _resize_back(self, probs: np.ndarray, height: int, width: int) -> np.ndarray:
        """K×h×w → H×W×K float32 (bicubic, like the original's probability resize)."""
        hwk = np.ascontiguousarray(probs.transpose(1, 2, 0))
        if hwk.shape[:2] == (height, width):
            return hwk
        k = hwk.shape[2]
        if k <= 512:
            out = cv2.resize(hwk, (width, height), interpolation=cv2.INTER_CUBIC)
            return out.reshape(height, width, k)
        return np.stack(
            [cv2.resize(hwk[:, :, i], (width, height), interpolation=cv2.INTER_CUBIC) for i in range(k)],
            axis=2,
        )

    def predict_proba_batch(
        self, images: list[np.ndarray], network: Network | None = None
    ) -> list[np.ndarray]:
        """Probabilities H×W×K float32 for each image (all images in one forward pass)."""
        if not images:
            return []
        images = [load_image(im) for im in images]
        return self.probabilities_from_inputs(
            [self.preprocess(im) for im in images], [im.shape[:2] for im in images], network
        )

    def probabilities_from_inputs(
        self, inputs: list[np.ndarray], sizes: list[tuple[int, int]], network: Network | None = None
    ) -> list[np.ndarray]:
        """Inputs made by :meth:`preprocess` → probabilities H×W×K resized back to ``sizes`` (H, W); one forward."""
        probs = self.forward(np.stack(inputs), network)
        return [self._resize_back(p, int(h), int(w)) for p, (h, w) in zip(probs, sizes)]

    def predict_proba(self, image, network: Network | None = None) -> np.ndarray:
        return self.predict_proba_batch([image], network)[0]

    def predict(self, image, network: Network | None = None) -> Prediction:
        """Class-index mask and probabilities of one image (numpy / PIL / path); multi-label: one plane per class
        (probability ≥ 0.5)."""
        probs = self.predict_proba(image, network)
        if self.multilabel:
            return Prediction(probs >= DEFAULT_THRESHOLD, probs, list(self.classes), multilabel=True)
        return Prediction(argmax(probs), probs, list(self.classes))


# The network pass a Predictor calls (the ``network`` argument of its methods): N×C×h×w normalised input →
# N×K×h×w probabilities (softmax, or sigmoids for multi-label models). Default: the backend's ``probabilities``.
Network = Callable[[np.ndarray], np.ndarray]


def argmax(probs: np.ndarray) -> np.ndarray:
    """H×W×K → H×W class indices (first maximum wins, as numpy/the original)."""
    k = probs.shape[2]
    return probs.argmax(axis=2).astype(np.uint8 if k <= 256 else np.uint16)
