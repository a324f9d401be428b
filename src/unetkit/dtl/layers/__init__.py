"""Layer families. Importing this package registers every layer in unetkit.dtl.registry.LAYERS."""

from __future__ import annotations

import importlib

FAMILIES = ("io", "flow", "classes", "geometry", "convert", "pixels", "domain")


def family_modules() -> list:
    """The family modules (each defines EXAMPLE_SETTINGS for the contract test)."""
    return [importlib.import_module(f"{__name__}.{family}") for family in FAMILIES]


family_modules()
