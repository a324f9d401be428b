"""`Predictor`: one trained model applied to images, with the same preprocessing as training.

:meth:`Predictor.predict` applies the model's inference settings (the card's ``inference``: full_image or
sliding_window, TTA, threshold, clean-up), the same as ``infer`` and ``serve``. One network input is made as:
pixels → the model's channels → bicubic resize to the card's input size → ÷scale, mean/std normalisation → forward →
softmax → probabilities resized back to the image size (bicubic) → argmax. (The original resized the input
bilinearly at inference although it trained with bicubic; unetkit uses bicubic for both, see docs/inference.md.)
Multi-label models (the card says ``multilabel``) use one sigmoid per class instead of the softmax, and a class is
present where its probability is ≥ 0.5, independently of the others.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from unetkit.errors import UnetkitError
from unetkit.inference.backends import OnnxBackend, TorchBackend, resolve_device
from unetkit.inference.postprocess import argmax
from unetkit.inference.prediction import Network, Prediction, load_image
from unetkit.inference_config import InferenceConfig, load_config, parse_config
from unetkit.models.card import ONNX_METADATA_KEY, ModelCard, ModelClass
from unetkit.models.preprocess import conform_channels, normalize, resize_image

__all__ = ["ModelClass", "Network", "Prediction", "Predictor", "argmax", "load_image", "resolve_settings"]


def resolve_settings(card: ModelCard, settings=None) -> InferenceConfig:
    """The inference settings to apply: ``settings`` when given (an InferenceConfig, a config dict or a JSON file),
    else the card's own, else the default (full_image at the model's input size, suffix ``_unet``)."""
    if settings is None:
        return card.inference if card.inference is not None else InferenceConfig()
    if isinstance(settings, InferenceConfig):
        return settings
    if isinstance(settings, dict):
        return parse_config(settings)
    return load_config(settings)


class Predictor:
    """Apply a segmentation model to images: class-index masks, probabilities, Supervisely annotations.

    ``settings`` (default: the card's inference settings) decide what :meth:`predict` does: the mode with its
    window, TTA, threshold and clean-up. ``tta`` given (True/False) overrides the TTA of every mode it runs.
    """

    def __init__(self, backend, card: ModelCard, *, tta: bool | None = None, settings=None):
        self.backend = backend
        self.card = card
        self.tta_override = tta
        self.settings = resolve_settings(card, settings)
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

    @property
    def tta(self) -> bool:
        """Whether :meth:`forward` averages over flips by default (this predictor's settings, or the override)."""
        return self.tta_for(self.settings.mode)

    @tta.setter
    def tta(self, value: bool | None) -> None:
        self.tta_override = value

    def tta_for(self, mode) -> bool:
        """TTA for a run of ``mode`` (an inference config's mode): the ``tta`` argument if given, else the mode's."""
        return mode.tta if self.tta_override is None else self.tta_override

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(
        cls,
        checkpoint_dir,
        device: str | None = "cpu",
        backend: str = "torch",
        amp: str | bool = "auto",
        tta: bool | None = None,
        onnx_path=None,
        gpu_device: int = 0,
        compile: str = "off",
        settings=None,
    ) -> Predictor:
        """Load a checkpoint or run folder. ``backend="onnxruntime"`` uses ``onnx_path`` or exports the model first
        (fp32). ``amp``: auto / off / bf16 / fp16 (:mod:`unetkit.models.numerics`); ``compile``: off / on / auto.
        ``settings``: inference settings instead of the card's (an InferenceConfig, a dict or a JSON file);
        ``tta``: True/False overrides the settings' TTA."""
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
        return cls(engine, card, tta=tta, settings=settings)

    @classmethod
    def from_onnx(
        cls,
        path,
        device: str | None = "cpu",
        tta: bool | None = None,
        threads: int | None = None,
        settings=None,
    ) -> Predictor:
        """Load an exported ONNX file; its model card (inference settings included) comes from the file's
        ``unetkit`` metadata."""
        engine = OnnxBackend(path, resolve_device(device), threads=threads)
        card = ModelCard.from_onnx_metadata(engine.metadata.get(ONNX_METADATA_KEY), file=path)
        return cls(engine, card, tta=tta, settings=settings)

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

    def forward(
        self, batch: np.ndarray, network: Network | None = None, tta: bool | None = None
    ) -> np.ndarray:
        """N×C×h×w normalised input → N×K×h×w probabilities (averaged over flips with TTA; default
        :attr:`tta`).

        ``network`` is the network pass the flips go around (default: this predictor's backend); serving
        plugs its micro-batcher in here.
        """
        network = network or self.backend.probabilities
        if not (self.tta if tta is None else tta):
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
        self, images: list[np.ndarray], network: Network | None = None, tta: bool | None = None
    ) -> list[np.ndarray]:
        """Probabilities H×W×K float32 of each whole image resized to the model input (one forward pass)."""
        if not images:
            return []
        images = [load_image(im) for im in images]
        return self.probabilities_from_inputs(
            [self.preprocess(im) for im in images], [im.shape[:2] for im in images], network, tta
        )

    def probabilities_from_inputs(
        self,
        inputs: list[np.ndarray],
        sizes: list[tuple[int, int]],
        network: Network | None = None,
        tta: bool | None = None,
    ) -> list[np.ndarray]:
        """Inputs made by :meth:`preprocess` → probabilities H×W×K resized back to ``sizes`` (H, W); one forward."""
        probs = self.forward(np.stack(inputs), network, tta)
        return [self._resize_back(p, int(h), int(w)) for p, (h, w) in zip(probs, sizes)]

    def predict_proba(self, image, network: Network | None = None) -> np.ndarray:
        """Probabilities H×W×K of one image with this predictor's settings (see :meth:`predict`)."""
        return self.predict(image, network).probabilities

    def predict(self, image, network: Network | None = None, settings=None) -> Prediction:
        """Mask and probabilities of one image (numpy / PIL / path) with the inference settings (default: this
        predictor's, i.e. the model card's): full_image or sliding_window, TTA, threshold and clean-up. A
        multi-label model's mask has one plane per class."""
        from unetkit.inference.modes import build_runner

        config = self.settings if settings is None else resolve_settings(self.card, settings)
        return build_runner(config, None, self, network).predict(load_image(image))
