"""Layer families. Importing this package registers every layer in unetkit.dtl.registry.LAYERS."""

from __future__ import annotations

import importlib

FAMILIES = ("io", "flow", "classes", "geometry", "convert", "pixels", "domain")


def family_modules() -> list:
    """The imported family modules (each may define EXAMPLE_SETTINGS for the contract test)."""
    modules = []
    for family in FAMILIES:
        name = f"{__name__}.{family}"
        try:
            modules.append(importlib.import_module(name))
        except (
            ModuleNotFoundError
        ) as exc:  # a family not written yet; the contract test lists missing actions
            if exc.name != name:
                raise
    return modules


family_modules()
