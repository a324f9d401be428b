"""Bounds checked before anything is decoded or allocated: pixel counts and coordinate ranges.

One global pixel cap covers images in ``img/``, bitmap PNGs inside annotations and annotation sizes. It is
``DEFAULT_MAX_PIXELS`` unless the environment variable ``UNETKIT_MAX_PIXELS`` says otherwise.
"""

from __future__ import annotations

import math
import os

from unetkit.errors import ConfigError, FormatError

DEFAULT_MAX_PIXELS = 200_000_000  # e.g. 14142 x 14142; an RGB image this size takes 600 MB
MAX_PIXELS_ENV = "UNETKIT_MAX_PIXELS"
COORD_LIMIT = 1_000_000_000  # |x|, |y| of any coordinate or origin (far beyond any real image)


def max_pixels() -> int:
    """The pixel cap in force (``UNETKIT_MAX_PIXELS`` or the default)."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"environment variable {MAX_PIXELS_ENV}={raw!r} must be a positive integer")
    return value


def check_pixels(width: int, height: int, what: str, *, file=None, json_path=None) -> None:
    """FormatError when ``width x height`` is over the pixel cap (the message says how to raise it)."""
    cap = max_pixels()
    if width * height > cap:
        raise FormatError(
            f"{what} is {width}x{height} = {width * height} pixels, over the limit of {cap} pixels "
            f"(set the environment variable {MAX_PIXELS_ENV} to raise it)",
            file=file,
            json_path=json_path,
        )


def coordinate_problem(value) -> str | None:
    """Why a JSON number cannot be a coordinate (NaN, infinite, beyond ±COORD_LIMIT), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"coordinate {value!r} is not a finite number"
    if abs(value) > COORD_LIMIT:
        text = str(value)
        text = text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"
        return f"coordinate {text} is out of range (|value| <= {COORD_LIMIT})"
    return None
