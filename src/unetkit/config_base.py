"""The one base of unetkit's JSON configs (training, inference, DTL settings).

Strict keys (an unknown key is an error with a "did you mean" suggestion), finite numbers only, one JSON
reader and one way to validate. Every problem is one :class:`~unetkit.errors.ConfigError` worded
``<file>: <json path>: <message>``.
"""

from __future__ import annotations

import difflib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from unetkit.errors import ConfigError

Config = TypeVar("Config", bound="ConfigModel")


class ConfigModel(BaseModel):
    """A config section: unknown keys and non-finite floats are rejected.

    ``legacy_keys`` lists old key names a subclass still accepts (renamed by its own validator); they are offered
    as suggestions too. ``config_name`` names a top-level config in errors when it was given as a dict, not a file.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    legacy_keys: ClassVar[tuple[str, ...]] = ()
    config_name: ClassVar[str] = "config"
    _source: str | None = PrivateAttr(None)

    @property
    def source(self) -> str:
        """The file this config was read from (its ``config_name`` when it came from a dict)."""
        return self._source or self.config_name

    def error(self, message: str, json_path: str | None = None) -> ConfigError:
        """A ConfigError about this config, naming its file."""
        return ConfigError(message, file=self.source, json_path=json_path)


# ------------------------------------------------------------------------------------------- finite numbers


class _NonFinite(float):
    """A number the reader parsed to inf/nan, remembering how the file wrote it (``1e400``, ``NaN``)."""

    text: str


def _mark_nonfinite(text: str) -> float:
    value = float(text)
    if math.isfinite(value):
        return value
    marked = _NonFinite(value)
    marked.text = text
    return marked


def find_nonfinite(value: object, path: str = "$") -> tuple[str, str] | None:
    """The JSON path and written form of the first inf/nan number inside ``value``; None when all are finite."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, getattr(value, "text", repr(value))
    if isinstance(value, dict):
        items = ((f"{path}.{key}", item) for key, item in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    else:
        return None
    for item_path, item in items:
        found = find_nonfinite(item, item_path)
        if found:
            return found
    return None


def require_finite(value: object, *, file: object, error: type[ConfigError] = ConfigError) -> None:
    """Raise ``<file>: <json path>: must be a finite number`` for the first inf/nan inside ``value``."""
    found = find_nonfinite(value)
    if found:
        raise error(nonfinite_message(found[1]), file=file, json_path=found[0])


def nonfinite_message(written: str) -> str:
    return f"must be a finite number (got {written})"


# --------------------------------------------------------------------------------------------- the reader


def merge(base: dict, update: dict, *, none_removes: bool = False) -> dict:
    """``update`` over ``base``, nested objects merged key by key (new dicts; the inputs are left as they are).
    With ``none_removes`` a ``None`` in ``update`` takes the key out (a field then falls back to its default)."""
    out = dict(base)
    for key, value in update.items():
        if value is None and none_removes:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, none_removes=none_removes)
        else:
            out[key] = value
    return out


def read_json(path: str | Path, *, what: str = "config", error: type[ConfigError] = ConfigError) -> object:
    """The JSON value of a file (UTF-8, BOM allowed); missing file, bad encoding, bad JSON or a non-finite
    number (``NaN``, ``Infinity``, ``1e400``) raise ``error`` naming the file. ``what`` names the file's role."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} file not found", file=path) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", file=path) from None
    try:
        value = json.loads(
            raw.decode("utf-8-sig"), parse_float=_mark_nonfinite, parse_constant=_mark_nonfinite
        )
    except UnicodeDecodeError as exc:
        message = f"invalid JSON: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise error(message, file=path, json_path="$") from None
    except json.JSONDecodeError as exc:
        message = f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise error(message, file=path, json_path="$") from None
    except (ValueError, RecursionError) as exc:  # an integer too long to convert, nesting too deep
        raise error(f"invalid JSON: {exc}", file=path, json_path="$") from None
    require_finite(value, file=path, error=error)
    return value


# ------------------------------------------------------------------------------------------- validation


def validate_config(
    model_cls: type[Config], data: object, *, file: object = None, error: type[ConfigError] = ConfigError
) -> Config:
    """``data`` (a dict) validated as ``model_cls``; any problem is one ``error`` naming the file (``file``, or
    the model's ``config_name`` for a dict from Python), the JSON path and what is wrong."""
    source = model_cls.config_name if file is None else str(file)
    if not isinstance(data, dict):
        raise error(f"the {model_cls.config_name} must be a JSON object", file=source, json_path="$")
    require_finite(data, file=source, error=error)
    try:
        config = model_cls.model_validate(data)
    except ValidationError as exc:
        path, message = describe_validation_error(exc, model_cls)
        raise error(message, file=source, json_path=path) from None
    config._source = source
    return config


def describe_validation_error(exc: ValidationError, model_cls: type[BaseModel]) -> tuple[str, str]:
    """(JSON path, message) of the first problem; an unknown key gets "did you mean" and the allowed keys."""
    errors = exc.errors()
    err = errors[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    if err["type"] == "extra_forbidden":
        path, parents = locate(model_cls, loc[:-1])
        path += f"[{loc[-1]}]" if isinstance(loc[-1], int) else f".{loc[-1]}"
        message = unknown_key_message(str(loc[-1]), _keys(parents))
    else:
        path, _ = locate(model_cls, loc)
        message = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        if err["type"] not in ("missing", "value_error") and not isinstance(got, dict | list | BaseModel):
            message += f" (got {got!r})"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return path, message


def unknown_key_message(key: str, known: list[str]) -> str:
    """``unknown key 'epoch' (did you mean 'epochs'?); allowed keys: ...``."""
    message = f"unknown key {key!r}" + did_you_mean(key, known)
    return message + (f"; allowed keys: {', '.join(known)}" if known else "")


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``; empty when none is close."""
    guess = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {guess[0]!r}?)" if guess else ""


def _keys(candidates: list) -> list[str]:
    keys: list[str] = []
    for tp in candidates:
        if _is_model(tp):
            keys += [k for k in (*tp.model_fields, *getattr(tp, "legacy_keys", ())) if k not in keys]
    return keys


# A pydantic error location → the JSON path. Union members appear in a location as tags ("roi" for a
# discriminated union, "list[float]" for a plain one); they are not part of the JSON and are left out.


def locate(model_cls: type[BaseModel], loc: list | tuple) -> tuple[str, list]:
    """(JSON path, the annotations that can stand there) of a pydantic error location below ``model_cls``."""
    path, candidates = "$", [model_cls]
    for part in loc:
        tagged = [tp for tp in candidates if part in _tags(tp)] if len(candidates) > 1 else []
        if tagged:
            candidates = tagged
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
        candidates = [c for tp in candidates for c in (_child(tp, part) or ())]
    return path, candidates


def _is_model(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _alternatives(tp: object) -> list:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _alternatives(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [alt for arg in typing.get_args(tp) if arg is not type(None) for alt in _alternatives(arg)]
    return [tp]


def _child(tp: object, part: str | int) -> list | None:
    """The annotations at key/index ``part`` of a value of type ``tp``; None when ``tp`` has no such part."""
    if _is_model(tp):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return None if field is None else _alternatives(field.annotation)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple, set, frozenset) and isinstance(part, int):
        return _alternatives(args[0]) if args else [Any]
    if origin is dict:
        return _alternatives(args[1]) if args else [Any]
    return None


def _tags(tp: object) -> set[str]:
    """The names pydantic gives a union member in error locations."""
    if _is_model(tp):
        literals = {
            value
            for field in tp.model_fields.values()
            if typing.get_origin(field.annotation) is typing.Literal
            for value in typing.get_args(field.annotation)
        }
        return {tp.__name__, *map(str, literals)}
    return {str(tp).replace(" ", "").removeprefix("typing."), getattr(tp, "__name__", "")}
