"""Model zoo: ``create_model(name, num_classes, in_channels=3, **options)``, checkpoints, preprocessing.

Torch is imported lazily so that ``unetkit.models.preprocess`` stays light.
"""

from __future__ import annotations

__all__ = ["create_model", "list_models", "register_model", "model_stride"]


def __getattr__(name: str):
    if name in __all__:
        from unetkit.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'unetkit.models' has no attribute {name!r}")
