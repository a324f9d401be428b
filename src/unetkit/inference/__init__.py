"""Inference: `Predictor`, inference modes (§3.3), project inference, ONNX export and evaluation.

Never imports unetkit.training.
"""

from __future__ import annotations

from unetkit.inference.config import InferenceConfig, load_config, parse_config
from unetkit.inference.predictor import ModelClass, Prediction, Predictor

__all__ = ["InferenceConfig", "ModelClass", "Prediction", "Predictor", "load_config", "parse_config"]
