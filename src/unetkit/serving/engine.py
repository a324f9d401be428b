"""The model behind the service: a :class:`Predictor` whose network passes the service routes through its batcher."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetkit.errors import ConfigError, UnetkitError
from unetkit.inference.modes import build_runner, check_annotation
from unetkit.inference.predictor import Network, Predictor
from unetkit.project import Annotation, Bitmap, Label, ProjectMeta
from unetkit.project.annotation import parse_size

# Default mode of the original deploy: full_image with suffix "_model" (docs/original-behaviour.md, "Deploy protocol").
DEPLOY_SUFFIX = "_model"


class ServingEngine:
    """Wraps a Predictor for the service: batched forwards, class list, mode runs, out meta."""

    def __init__(self, predictor: Predictor, *, backend: str = "torch", device: str = "cpu"):
        self.predictor = predictor
        self.card = predictor.card
        self.backend = backend
        self.device = device
        self.classes = [c.model_dump() for c in self.card.classes.classes]

    @classmethod
    def load(cls, model_dir: str | Path, *, backend: str = "torch", device: str = "auto") -> ServingEngine:
        """Load a checkpoint folder once (weights via ``torch.load(weights_only=True)``)."""
        predictor = Predictor.from_checkpoint(model_dir, device=device, backend=backend)
        session = getattr(predictor.backend, "session", None)  # onnxruntime: report the provider in use
        dev = (
            session.get_providers()[0]
            if session is not None
            else getattr(predictor.backend, "device", device)
        )
        return cls(predictor, backend=backend, device=str(dev))

    # -------------------------------------------------------------- batching
    def forward_batch(self, items: list[np.ndarray]) -> list[np.ndarray]:
        """The batch function: normalised C×h×w inputs → K×h×w probabilities, one pass of the bare network.

        TTA, when on, is applied by the predictor around the batched network (see ``network`` below).
        """
        return list(self.predictor.backend.probabilities(np.stack(items)))

    def warmup_item(self) -> np.ndarray:
        w, h = self.predictor.input_size
        return np.zeros((self.predictor.in_channels, h, w), dtype=np.float32)

    # -------------------------------------------------------------- modern API
    def predict(self, image: np.ndarray, network: Network):
        """A :class:`Prediction` (mask H×W, probabilities H×W×K) of one image with the model card's inference
        settings, as ``infer`` and ``Predictor.predict`` make it; ``network`` = the batched network."""
        return self.predictor.predict(image, network)

    def prediction_to_annotation(self, prediction) -> dict:
        """One bitmap label per class present (original class titles, no suffix; multi-label: may overlap)."""
        labels = []
        for cls in self.classes:
            bitmap = Bitmap.from_full_mask(prediction.class_mask(cls["index"]))
            if bitmap is not None:
                labels.append(Label(cls["title"], bitmap))
        height, width = prediction.mask.shape[:2]
        return Annotation(int(height), int(width), labels).to_json()

    def describe(self) -> dict:
        """The ``/v1/model`` body: the model card's description, the backend and the checkpoint."""
        card = self.card
        checkpoint: dict = {}
        if card.path is not None:
            checkpoint = {
                "path": str(card.path),
                "original_supervisely": card.original,
                "epoch": card.provenance.epoch,
                "val_metrics": card.provenance.val_metrics,
                "model_options": card.model_options,
                "settings": card.settings,
            }
        return {**card.describe(), "backend": self.backend, "device": self.device, "checkpoint": checkpoint}

    # -------------------------------------------------------------- original protocol
    def run_mode(
        self,
        image: np.ndarray,
        ann_json: dict | None,
        meta_json: dict | None,
        mode_json: dict | None,
        network: Network,
    ) -> dict:
        """Original `/model/inference`: the input annotation (if any) through an inference mode → annotation JSON."""
        config = self._config(mode_json)
        meta = self._meta(meta_json)
        if ann_json is not None and meta_json is None:
            raise UnetkitError(
                "In order to perform inference with annotation you must specify the appropriate project meta.",
                json_path="$.meta",
            )
        runner = build_runner(config, meta, self.predictor, network)
        if ann_json is not None:  # the size first: bitmaps are bounded by it before they are decoded
            height, width = parse_size(ann_json, "annotation")
            check_annotation(image, Annotation(height, width))
        ann = None if ann_json is None else Annotation.from_json(ann_json, runner.out_meta, file="annotation")
        return runner.apply(image, ann).to_json()  # an annotation of another size → FormatError

    def out_meta(self, meta_json: dict | None, mode_json: dict | None) -> dict:
        """Original `/model/get_out_meta`: input meta + renamed model classes (+ mode classes)."""
        runner = build_runner(self._config(mode_json), self._meta(meta_json), self.predictor)
        return runner.out_meta.to_json()

    def _config(self, mode_json: dict | None):
        """The request's ``mode`` part. A mode that names no ``name`` is applied over the model card's inference
        settings, with the deploy suffix ``_model`` (the card decides the mask, the protocol the class names);
        an original Supervisely checkpoint (no settings) keeps the original default, full_image with suffix
        ``_model`` (docs/original-behaviour.md, "Deploy protocol")."""
        from unetkit.config_base import merge
        from unetkit.inference_config import parse_config

        mode = dict(mode_json or {})
        card_settings = self.card.inference
        if "name" not in mode and card_settings is not None:
            base = card_settings.to_json()["mode"]
            base["model_classes"] = base["model_tags"] = {"add_suffix": DEPLOY_SUFFIX}
            mode = merge(base, mode)
        try:
            return parse_config({"model": {}, "mode": mode}, default_suffix=DEPLOY_SUFFIX)
        except ConfigError as exc:  # paths relative to the `mode` part itself
            path = "$" + (exc.json_path or "$.mode").removeprefix("$.mode")
            raise ConfigError(exc.message, file="mode", json_path=path) from None

    @staticmethod
    def _meta(meta_json: dict | None) -> ProjectMeta:
        return ProjectMeta() if meta_json is None else ProjectMeta.from_json(meta_json, file="meta")


__all__ = ["DEPLOY_SUFFIX", "ServingEngine"]
