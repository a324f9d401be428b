"""The model behind the service: a :class:`Predictor` whose forward passes can be routed through the batcher."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np

from unetkit.errors import ConfigError, UnetkitError
from unetkit.inference.predictor import Predictor
from unetkit.project import Annotation, Bitmap, Label, ProjectMeta

# Default mode of the original deploy: full_image with suffix "_model" (§3.5a).
DEPLOY_SUFFIX = "_model"

Forward = Callable[[list[np.ndarray]], list[np.ndarray]]


class ServingEngine:
    """Wraps a Predictor for the service: batched forwards, class list, mode runs, out meta."""

    def __init__(self, predictor: Predictor, *, info=None, backend: str = "torch", device: str = "cpu"):
        self.predictor = predictor
        self.info = info
        self.backend = backend
        self.device = device
        shapes = {c.get("title"): c.get("shape", "bitmap") for c in predictor.out_classes}
        self.classes = [
            {"index": c.index, "title": c.title, "color": c.color, "shape": shapes.get(c.title, "bitmap")}
            for c in predictor.classes
        ]

    @classmethod
    def load(cls, model_dir: str | Path, *, backend: str = "torch", device: str = "auto") -> ServingEngine:
        """Load a checkpoint folder once (weights via ``torch.load(weights_only=True)``)."""
        from unetkit.models.checkpoint import read_checkpoint_info

        info = read_checkpoint_info(model_dir)
        predictor = Predictor.from_checkpoint(model_dir, device=device, backend=backend)
        session = getattr(predictor.backend, "session", None)  # onnxruntime: report the provider in use
        dev = (
            session.get_providers()[0]
            if session is not None
            else getattr(predictor.backend, "device", device)
        )
        return cls(predictor, info=info, backend=backend, device=str(dev))

    # -------------------------------------------------------------- batching
    def forward_batch(self, items: list[np.ndarray]) -> list[np.ndarray]:
        """The batch function: normalised C×h×w inputs → K×h×w probabilities, one forward pass."""
        probs = self.predictor.forward(np.stack(items))
        return list(probs)

    def warmup_item(self) -> np.ndarray:
        w, h = self.predictor.input_size
        return np.zeros((self.predictor.in_channels, h, w), dtype=np.float32)

    def bind(self, forward: Forward) -> Predictor:
        """A per-request copy of the predictor whose forward passes go through ``forward`` (the batcher)."""
        proxy = copy.copy(self.predictor)
        proxy.forward = lambda batch: np.stack(forward(list(batch)))  # type: ignore[method-assign]
        return proxy

    # -------------------------------------------------------------- modern API
    def predict(self, image: np.ndarray, forward: Forward):
        """A :class:`Prediction`: mask (H×W class indices) and probabilities (H×W×K) of one image."""
        return self.bind(forward).predict(image)

    def mask_to_annotation(self, mask: np.ndarray) -> dict:
        """One bitmap label per class present (original class titles, no suffix)."""
        labels = []
        for cls in self.classes:
            bitmap = Bitmap.from_full_mask(mask == cls["index"])
            if bitmap is not None:
                labels.append(Label(cls["title"], bitmap))
        return Annotation(int(mask.shape[0]), int(mask.shape[1]), labels).to_json()

    def describe(self) -> dict:
        p, info = self.predictor, self.info
        width, height = p.input_size
        checkpoint: dict = {}
        if info is not None:
            checkpoint = {
                "path": str(info.path),
                "original_supervisely": bool(info.original),
                "epoch": info.epoch,
                "val_metrics": info.val_metrics,
                "model_options": info.model_options,
                "settings": info.settings,
            }
        return {
            "architecture": p.model_name,
            "backend": self.backend,
            "device": self.device,
            "in_channels": p.in_channels,
            "input_size": {"width": width, "height": height},
            "normalization": {"mean": list(p.mean), "std": list(p.std)},
            "resize": p.resize,
            "num_classes": p.num_classes,
            "classes": self.classes,
            "class_title_to_idx": p.class_title_to_idx,
            "checkpoint": checkpoint,
        }

    # -------------------------------------------------------------- original protocol
    def run_mode(
        self,
        image: np.ndarray,
        ann_json: dict | None,
        meta_json: dict | None,
        mode_json: dict | None,
        forward: Forward,
    ) -> dict:
        """Original `/model/inference`: the input annotation (if any) through an inference mode → annotation JSON."""
        from unetkit.inference.modes import build_mode

        config = self._config(mode_json)
        meta = self._meta(meta_json)
        if ann_json is not None and meta_json is None:
            raise UnetkitError(
                "In order to perform inference with annotation you must specify the appropriate project meta.",
                json_path="$.meta",
            )
        predictor = self.bind(forward)
        mode = build_mode(config, meta, predictor)
        ann = None if ann_json is None else Annotation.from_json(ann_json, mode.out_meta, file="annotation")
        return mode.apply(image, ann).to_json()  # an annotation of another size → FormatError

    def out_meta(self, meta_json: dict | None, mode_json: dict | None) -> dict:
        """Original `/model/get_out_meta`: input meta + renamed model classes (+ mode classes)."""
        from unetkit.inference.modes import build_mode

        mode = build_mode(self._config(mode_json), self._meta(meta_json), self.predictor)
        return mode.out_meta.to_json()

    @staticmethod
    def _config(mode_json: dict | None):
        """The request's ``mode`` part: §3.1 defaults, full_image with suffix ``_model`` when absent."""
        from unetkit.inference.config import parse_config

        try:
            return parse_config({"model": {}, "mode": mode_json or {}}, default_suffix=DEPLOY_SUFFIX)
        except ConfigError as exc:  # paths relative to the `mode` part itself
            path = "$" + (exc.json_path or "$.mode").removeprefix("$.mode")
            raise ConfigError(exc.message, file="mode", json_path=path) from None

    @staticmethod
    def _meta(meta_json: dict | None) -> ProjectMeta:
        return ProjectMeta() if meta_json is None else ProjectMeta.from_json(meta_json, file="meta")


__all__ = ["DEPLOY_SUFFIX", "ServingEngine"]
