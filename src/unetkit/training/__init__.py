"""Training of every registered model with the original UNet V2 JSON config (see docs/training.md)."""

from unetkit.training.config import TrainConfig, load_config, parse_config
from unetkit.training.run import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "load_config", "parse_config", "train"]
