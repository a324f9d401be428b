"""Layer families. Importing this package registers every layer in unetkit.dtl.registry.LAYERS."""

from unetkit.dtl.layers.catalog import FAMILIES, get_layer

__all__ = ["FAMILIES", "get_layer"]
