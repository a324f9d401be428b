"""unetkit: Supervisely UNet V2 + DTL re-created on PyTorch.

The names a notebook needs, each loaded on first use so that ``import unetkit`` stays fast and torch-free::

    import unetkit
    project = unetkit.Project.read("lemons")
    result = unetkit.train("lemons", "train_config.json", "runs/lemons")
    predictor = unetkit.Predictor.from_checkpoint(result.best_checkpoint)
    run = unetkit.auto("lemons", "runs/auto", budget="15m")   # self-configuring (docs/auto.md)
"""

import importlib

__version__ = "0.1.0"

# public name -> the package that defines it (one line per name; nothing is imported until it is used)
_EXPORTS = {
    "create_model": "unetkit.models",
    "list_models": "unetkit.models",
    "Project": "unetkit.project",
    "Predictor": "unetkit.inference",
    "load_checkpoint": "unetkit.models.checkpoint",
    "train": "unetkit.training",
    "auto": "unetkit.auto",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name == "auto":  # the package itself: callable, and what ``import unetkit.auto`` binds here anyway
        return importlib.import_module("unetkit.auto")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'unetkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
