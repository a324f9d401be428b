"""Model registry: ``create_model(name, num_classes, in_channels=3, **options)`` and friends."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from unetkit.errors import ConfigError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., nn.Module]
    stride: Callable[..., int]
    summary: str


_MODELS: dict[str, ModelSpec] = {}
_ARCH_MODULES = ("unet_v2", "unet", "fcn", "resunet", "inception_unet", "u2net", "vnet", "ensemble")
_loaded = False


def register_model(name: str, *, stride: int | Callable[..., int], summary: str = ""):
    """Decorator registering ``builder(num_classes, in_channels=3, **options)`` under ``name``.

    ``stride`` is the input-size multiple the model needs (an int, or a function of the options).
    Refuses a name that is already registered.
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _ensure_loaded()  # built-in names first, so a user model can never shadow them
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        stride_fn = stride if callable(stride) else (lambda _s=int(stride), **_: _s)
        _MODELS[name] = ModelSpec(name, builder, stride_fn, summary or (builder.__doc__ or "").strip())
        return builder

    return decorate


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import importlib

        for module in _ARCH_MODULES:
            importlib.import_module(f"unetkit.models.{module}")


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_loaded()
    return sorted(_MODELS)


def get_model_spec(name: str) -> ModelSpec:
    _ensure_loaded()
    try:
        return _MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}") from None


def _check_options(spec: ModelSpec, fn: Callable, options: dict) -> None:
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in allowed:
            raise ConfigError(
                f"unknown option {key!r} for model {spec.name!r}; allowed: {', '.join(allowed)}"
            )


def create_model(name: str, num_classes: int, in_channels: int = 3, **options) -> nn.Module:
    """Build a registered model; unknown names/options and bad values raise ConfigError."""
    spec = get_model_spec(name)
    _check_options(spec, spec.builder, options)
    return spec.builder(num_classes, in_channels, **options)


def model_stride(name: str, **options) -> int:
    """The multiple the input height/width must have for ``name`` with these options (1 = any size)."""
    spec = get_model_spec(name)
    _check_options(spec, spec.builder, options)
    return int(spec.stride(**options))
