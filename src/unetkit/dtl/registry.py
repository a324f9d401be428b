"""Registry of DTL layer classes, keyed by their `action` name."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unetkit.dtl.base import Layer

LAYERS: dict[str, type[Layer]] = {}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Class decorator: register a Layer subclass under ``cls.action``; refuses duplicate names."""
    action = getattr(cls, "action", None)
    if not action:
        raise ValueError(f"{cls.__name__} has no `action`")
    if action in LAYERS:
        raise ValueError(f'DTL action "{action}" is already registered by {LAYERS[action].__name__}')
    LAYERS[action] = cls
    return cls
