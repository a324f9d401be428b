"""Every layer family, and the layer class of an action. Importing this module registers every layer."""

from unetkit.dtl.base import Layer
from unetkit.dtl.layers import classes, convert, domain, flow, geometry, io, pixels
from unetkit.dtl.registry import LAYERS
from unetkit.errors import GraphError

# the family modules; each defines EXAMPLE_SETTINGS for the contract test
FAMILIES = (io, flow, classes, geometry, convert, pixels, domain)


def get_layer(action: str) -> type[Layer]:
    """The layer class for ``action``; GraphError for an unknown action."""
    try:
        return LAYERS[action]
    except KeyError:
        raise GraphError(f'Unrecognized action "{action}".') from None
