"""Layer families. Importing this package registers every layer in unetkit.dtl.registry.LAYERS."""

from unetkit.dtl.layers import classes, convert, domain, flow, geometry, io, pixels

# the family modules; each defines EXAMPLE_SETTINGS for the contract test
FAMILIES = (io, flow, classes, geometry, convert, pixels, domain)

__all__ = ["FAMILIES"]
