"""The text forms of `unetkit import masks`' value options (``--value-map``, ``--classes``, ``--ignore``), parsed
once for every door that takes them (the CLI and the studio)."""

from __future__ import annotations

from unetkit.errors import ConfigError


def parse_value_map(text: str) -> dict[int, str | None]:
    """'0=,1=road,2=car' -> {0: None, 1: 'road', 2: 'car'} (an empty class = background)."""
    out: dict[int, str | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        value, sep, title = part.partition("=")
        try:
            key = int(value)
        except ValueError:
            key = None
        if not sep or key is None or key < 0:
            raise ConfigError(
                f"--value-map entry {part!r} must look like VALUE=CLASS (VALUE a non-negative integer)"
            )
        if key in out:
            raise ConfigError(f"--value-map lists value {key} twice")
        out[key] = title.strip() or None
    if not any(out.values()):
        raise ConfigError("--value-map maps no value to a class")
    return out


def parse_classes(text: str) -> dict[int, str | None]:
    """'Sky,Building,,Car' -> {0: 'Sky', 1: 'Building', 2: None, 3: 'Car'} (an empty name = background)."""
    names = [n.strip() for n in text.split(",")]
    given = [n for n in names if n]
    if not given:
        raise ConfigError("--classes lists no class name")
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise ConfigError(f"--classes lists {', '.join(twice)} twice")
    return {i: n or None for i, n in enumerate(names)}


def parse_values(text: str, flag: str) -> tuple[int, ...]:
    """'11' or '0,255' -> (11,) / (0, 255): non-negative integers."""
    try:
        values = tuple(int(v) for v in filter(None, (v.strip() for v in text.split(","))))
    except ValueError:
        values = ()
    if not values or min(values) < 0:
        raise ConfigError(
            f"{flag} {text!r} must be non-negative integers separated by commas, e.g. 11 or 0,255"
        )
    return values
