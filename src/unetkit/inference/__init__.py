"""Inference: `Predictor`, inference modes, project inference, ONNX export and evaluation.

Original behaviour: docs/original-behaviour.md, "Inference modes" and "Project inference".

Never imports unetkit.training.
"""

from __future__ import annotations

from unetkit.inference.predictor import ModelClass, Prediction, Predictor
from unetkit.inference_config import InferenceConfig, load_config, parse_config

__all__ = ["InferenceConfig", "ModelClass", "Prediction", "Predictor", "load_config", "parse_config"]
