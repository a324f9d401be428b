"""`Predictor`: one trained model applied to images, with the same preprocessing as training.

image (RGB uint8) → bicubic resize to the checkpoint's input size → ÷255, mean/std normalisation → forward →
softmax → probabilities resized back to the image size (bicubic) → argmax. (The original resized the input
bilinearly at inference although it trained with bicubic; unetkit uses bicubic for both, see docs/inference.md.)
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from unetkit.errors import FormatError, UnetkitError
from unetkit.inference.backends import OnnxBackend, TorchBackend, resolve_device
from unetkit.models.preprocess import ensure_rgb, normalize, resize_image

ONNX_METADATA_KEY = "unetkit"


@dataclass(frozen=True)
class ModelClass:
    index: int
    title: str
    color: str


@dataclass
class Prediction:
    mask: np.ndarray  # H×W class indices (uint8, or uint16 for > 256 classes)
    probabilities: (
        np.ndarray
    )  # H×W×C float32, softmax (after the bicubic resize back; may slightly leave [0, 1])
    classes: list[ModelClass]


def model_classes(out_classes: list[dict], class_title_to_idx: dict[str, int]) -> list[ModelClass]:
    """Output classes = out_classes ∩ class_title_to_idx (neutral excluded), in class_title_to_idx order."""
    by_title = {c["title"]: c for c in out_classes}
    return [
        ModelClass(int(idx), title, str(by_title[title].get("color", "#FF0000")).upper())
        for title, idx in class_title_to_idx.items()
        if title in by_title
    ]


def load_image(image) -> np.ndarray:
    """numpy (H×W, H×W×1/3/4) / PIL image / path → RGB uint8 H×W×3."""
    if isinstance(image, (str, Path)):
        from unetkit.project import read_image

        image = read_image(image)
    elif not isinstance(image, np.ndarray):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            Image = None
        if Image is not None and isinstance(image, Image.Image):
            image = np.asarray(image.convert("RGB"))
        else:
            raise UnetkitError(f"unsupported image type {type(image).__name__}")
    if image.dtype != np.uint8:
        raise UnetkitError(f"images must be uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise UnetkitError(f"images must be H×W, H×W×1, H×W×3 or H×W×4, got shape {image.shape}")
    return ensure_rgb(image)


class Predictor:
    """Apply a segmentation model to images: class-index masks, probabilities, Supervisely annotations."""

    def __init__(
        self,
        backend,
        *,
        class_title_to_idx: dict[str, int],
        out_classes: list[dict],
        input_size: tuple[int, int],
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        resize: str = "bicubic",
        in_channels: int = 3,
        tta: bool = False,
        model_name: str = "",
    ):
        self.backend = backend
        self.class_title_to_idx = dict(class_title_to_idx)
        self.out_classes = [dict(c) for c in out_classes]
        self.classes = model_classes(self.out_classes, self.class_title_to_idx)
        self.num_classes = max(self.class_title_to_idx.values()) + 1
        self.input_size = (int(input_size[0]), int(input_size[1]))  # (width, height)
        self.mean, self.std = tuple(mean), tuple(std)
        self.resize = resize
        self.in_channels = in_channels
        self.tta = tta
        self.model_name = model_name

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(
        cls,
        checkpoint_dir,
        device: str | None = "cpu",
        backend: str = "torch",
        amp: bool = False,
        tta: bool = False,
        onnx_path=None,
        gpu_device: int = 0,
    ) -> Predictor:
        """Load a checkpoint folder. ``backend="onnxruntime"`` uses ``onnx_path`` or exports the model first."""
        from unetkit.models.checkpoint import load_checkpoint, read_checkpoint_info

        dev = resolve_device(device, gpu_device)
        if backend == "torch":
            loaded = load_checkpoint(checkpoint_dir, map_location=str(dev))
            info, engine = loaded.info, TorchBackend(loaded.model, dev, amp)
        elif backend == "onnxruntime":
            info = read_checkpoint_info(checkpoint_dir)
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
        return cls(
            engine,
            class_title_to_idx=info.class_title_to_idx,
            out_classes=info.out_classes,
            input_size=info.input_size,
            mean=info.mean,
            std=info.std,
            resize=info.resize,
            in_channels=info.in_channels,
            tta=tta,
            model_name=info.model_name,
        )

    @classmethod
    def from_onnx(
        cls, path, device: str | None = "cpu", tta: bool = False, threads: int | None = None
    ) -> Predictor:
        """Load an exported ONNX file; class map, normalisation and input size come from its metadata."""
        engine = OnnxBackend(path, resolve_device(device), threads=threads)
        raw = engine.metadata.get(ONNX_METADATA_KEY)
        if raw is None:
            raise FormatError(
                f"no {ONNX_METADATA_KEY!r} metadata (not exported by unetkit export onnx)", file=path
            )
        meta = json.loads(raw)
        return cls(
            engine,
            class_title_to_idx=meta["class_title_to_idx"],
            out_classes=meta["out_classes"],
            input_size=(meta["input_size"]["width"], meta["input_size"]["height"]),
            mean=meta["normalization"]["mean"],
            std=meta["normalization"]["std"],
            resize=meta.get("resize", "bicubic"),
            in_channels=meta.get("in_channels", 3),
            tta=tta,
            model_name=meta.get("model", ""),
        )

    # ------------------------------------------------------------------ core
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 → float32 C×h×w at the model input size, normalised exactly as in training."""
        w, h = self.input_size
        x = resize_image(image, w, h, self.resize)
        if self.in_channels == 3:
            return normalize(x, self.mean, self.std)
        if self.in_channels == 1:
            gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            return ((gray - self.mean[0]) / self.std[0])[None].astype(np.float32)
        raise UnetkitError(f"models with {self.in_channels} input channels cannot take RGB images")

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """N×C×h×w normalised input → N×K×h×w softmax probabilities (averaged over flips with TTA)."""
        if not self.tta:
            return self.backend.probabilities(batch)
        flips = [(), (3,), (2,), (2, 3)]
        stacked = np.concatenate([np.flip(batch, axis=f) if f else batch for f in flips], axis=0)
        probs = self.backend.probabilities(np.ascontiguousarray(stacked))
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

    def predict_proba_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Probabilities H×W×K float32 for each image (all images in one forward pass)."""
        if not images:
            return []
        images = [load_image(im) for im in images]
        return self.probabilities_from_inputs(
            [self.preprocess(im) for im in images], [im.shape[:2] for im in images]
        )

    def probabilities_from_inputs(
        self, inputs: list[np.ndarray], sizes: list[tuple[int, int]]
    ) -> list[np.ndarray]:
        """Inputs made by :meth:`preprocess` → probabilities H×W×K resized back to ``sizes`` (H, W); one forward."""
        probs = self.forward(np.stack(inputs))
        return [self._resize_back(p, int(h), int(w)) for p, (h, w) in zip(probs, sizes)]

    def predict_proba(self, image) -> np.ndarray:
        return self.predict_proba_batch([image])[0]

    def predict(self, image) -> Prediction:
        """Class-index mask and probabilities of one image (numpy / PIL / path)."""
        probs = self.predict_proba(image)
        return Prediction(argmax(probs), probs, list(self.classes))

    def annotate(self, image, ann=None, mode=None, meta=None):
        """Supervisely annotation of one image through an inference mode (default: full_image, suffix ``_unet``).

        ``mode``: an :class:`~unetkit.inference.config.InferenceConfig`, a mode model, or a config dict.
        ``ann``/``meta``: the image's existing annotation and its project meta (kept objects need them).
        """
        from unetkit.inference.modes import build_mode

        image = load_image(image)
        inference_mode = build_mode(mode, meta, self)
        return inference_mode.apply(image, ann)


def argmax(probs: np.ndarray) -> np.ndarray:
    """H×W×K → H×W class indices (first maximum wins, as numpy/the original)."""
    k = probs.shape[2]
    return probs.argmax(axis=2).astype(np.uint8 if k <= 256 else np.uint16)
