"""Registry of DTL layer classes, keyed by their `action` name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from unetkit.errors import GraphError

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


def load_layers() -> dict[str, type[Layer]]:
    """Import every layer family module (fills LAYERS) and return the registry."""
    import unetkit.dtl.layers  # noqa: F401

    return LAYERS


def get_layer(action: str) -> type[Layer]:
    """The layer class for ``action``; GraphError for an unknown action."""
    load_layers()
    try:
        return LAYERS[action]
    except KeyError:
        raise GraphError(f'Unrecognized action "{action}".') from None
