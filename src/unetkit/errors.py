"""User-facing errors. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


def format_location(file: object | None, json_path: str | None) -> str:
    parts = [str(p) for p in (file, json_path) if p not in (None, "")]
    return ": ".join(parts)


class UnetkitError(Exception):
    """An error caused by the user's input (files, configs, arguments).

    ``file`` is the offending file, ``json_path`` a JSONPath-like location inside it
    (``$.objects[3].bitmap.data``); both are optional and prefixed to the message.
    """

    def __init__(self, message: str, *, file: object | None = None, json_path: str | None = None):
        self.message = message
        self.file = None if file is None else str(file)
        self.json_path = json_path
        where = format_location(self.file, json_path)
        super().__init__(f"{where}: {message}" if where else message)


class FormatError(UnetkitError):
    """A project, annotation or meta file does not follow the Supervisely format."""


class ConfigError(UnetkitError):
    """A training / inference / DTL config is invalid."""


class GraphError(ConfigError):
    """A DTL graph is invalid (the message names the layer index and action)."""


def json_path(loc: tuple | list, skip: tuple | frozenset = ()) -> str:
    """A pydantic error location → ``$.a.b[2].c`` (parts in ``skip``, e.g. union tags, are left out)."""
    path = "$"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in skip:
            path += f".{part}"
    return path
