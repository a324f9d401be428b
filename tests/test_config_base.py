"""The config base: strict keys with "did you mean", finite numbers, one reader, one error wording."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field, ValidationError, model_validator

from unetkit.config_base import ConfigModel, find_nonfinite, locate, read_json, validate_config
from unetkit.errors import ConfigError, GraphError


class Window(ConfigModel):
    width: int = Field(8, ge=1)
    height: int = 8


class Crop(ConfigModel):
    name: Literal["crop"] = "crop"
    window: Window = Window()


class Pad(ConfigModel):
    name: Literal["pad"] = "pad"
    amount: float = 0.0


class Names(ConfigModel):
    legacy_keys = ("save_classes",)
    save_names: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data):
        if isinstance(data, dict) and "save_classes" in data:
            data = {**data, "save_names": data["save_classes"]}
            del data["save_classes"]
        return data


class Demo(ConfigModel):
    config_name = "demo config"
    lr: float = 0.1
    step: Annotated[Crop | Pad, Field(discriminator="name")] = Crop()
    weights: list[float] | dict[str, float] | None = None
    names: Names = Names()
    options: dict[str, Any] = {}


def error(data, file=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate_config(Demo, data, file=file)
    return info.value


@pytest.mark.parametrize(
    ("data", "path", "suggestion"),
    [
        ({"lrr": 1}, "$.lrr", "'lr'"),
        ({"step": {"name": "crop", "windw": {}}}, "$.step.windw", "'window'"),
        ({"step": {"name": "crop", "window": {"widht": 3}}}, "$.step.window.widht", "'width'"),
        ({"step": {"name": "pad", "amonut": 3}}, "$.step.amonut", "'amount'"),
        ({"names": {"save_clases": []}}, "$.names.save_clases", "'save_classes'"),
    ],
)
def test_unknown_keys_say_did_you_mean(data, path, suggestion):
    err = error(data, file="demo.json")
    assert err.json_path == path
    assert f"(did you mean {suggestion}?)" in err.message
    assert "allowed keys:" in err.message
    assert str(err).startswith(f"demo.json: {path}: unknown key ")


def test_unknown_key_without_a_close_match_lists_the_allowed_keys():
    err = error({"zzz": 1})
    assert "did you mean" not in err.message
    assert err.message == "unknown key 'zzz'; allowed keys: lr, step, weights, names, options"


def test_paths_leave_union_tags_out():
    err = error({"step": {"name": "crop", "window": {"width": 0}}})
    assert err.json_path == "$.step.window.width"
    assert "greater than or equal to 1 (got 0)" in err.message
    assert error({"weights": [1.0, "x"]}).json_path == "$.weights[1]"
    assert locate(Demo, ["weights", "list[float]", 1]) == ("$.weights[1]", [float])
    assert locate(Demo, ["options", "a", 0])[0] == "$.options.a[0]"


def test_the_file_is_always_named():
    assert str(error({"lr": "x"})).startswith("demo config: $.lr: ")
    assert str(error({"lr": "x"}, file="a/b.json")).startswith("a/b.json: $.lr: ")
    assert str(error([])) == "demo config: $: the demo config must be a JSON object"
    config = validate_config(Demo, {}, file="c.json")
    assert config.source == "c.json"
    assert str(config.error("bad", json_path="$.lr")) == "c.json: $.lr: bad"
    assert validate_config(Demo, {}).source == "demo config"


def test_one_error_counts_the_others():
    err = error({"lr": "x", "zzz": 1, "names": 2})
    assert err.message.endswith("(and 2 more problems)")


@pytest.mark.parametrize(
    ("data", "path", "written"),
    [
        ({"lr": math.inf}, "$.lr", "inf"),
        ({"lr": -math.inf}, "$.lr", "-inf"),
        ({"step": {"name": "pad", "amount": math.nan}}, "$.step.amount", "nan"),
        ({"weights": [1.0, math.inf]}, "$.weights[1]", "inf"),
        ({"options": {"deep": [{"x": math.nan}]}}, "$.options.deep[0].x", "nan"),  # an Any field
    ],
)
def test_python_dicts_with_nonfinite_numbers_are_rejected(data, path, written):
    err = error(data, file="d.json")
    assert (err.json_path, err.message) == (path, f"must be a finite number (got {written})")


def test_the_model_itself_rejects_nonfinite_floats():
    with pytest.raises(ValidationError, match="finite number"):
        Demo(lr=math.inf)
    with pytest.raises(ValidationError, match="finite number"):
        Pad(amount=math.nan)


@pytest.mark.parametrize(
    ("text", "path", "written"),
    [
        ('{"lr": 1e400}', "$.lr", "1e400"),
        ('{"lr": -1e400}', "$.lr", "-1e400"),
        ('{"lr": Infinity}', "$.lr", "Infinity"),
        ('{"lr": -Infinity}', "$.lr", "-Infinity"),
        ('{"step": {"name": "pad", "amount": NaN}}', "$.step.amount", "NaN"),
        ('[0, {"a": [1.5, 2e999]}]', "$[1].a[1]", "2e999"),
    ],
)
def test_reader_rejects_nonfinite_numbers(tmp_path, text, path, written):
    f = tmp_path / "c.json"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_json(f)
    assert str(info.value) == f"{f}: {path}: must be a finite number (got {written})"


def test_reader_returns_plain_values(tmp_path):
    f = tmp_path / "c.json"
    f.write_bytes(b'\xef\xbb\xbf{"lr": 1e-3, "n": [1, 2.5e10], "s": "x"}')  # a BOM is allowed
    value = read_json(f)
    assert value == {"lr": 0.001, "n": [1, 2.5e10], "s": "x"}
    assert type(value["lr"]) is float and find_nonfinite(value) is None


def test_reader_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"lr": ', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_json(bad)
    assert str(info.value).startswith(f"{bad}: $: invalid JSON: Expecting value at line 1 column 8")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(ConfigError) as info:
        read_json(latin)
    assert str(info.value).startswith(f"{latin}: $: invalid JSON: not UTF-8 text")
    with pytest.raises(ConfigError) as info:
        read_json(tmp_path / "missing.json", what="training config")
    assert str(info.value) == f"{tmp_path / 'missing.json'}: training config file not found"
    with pytest.raises(GraphError):  # the error type is the caller's
        read_json(bad, what="graph", error=GraphError)
    with pytest.raises(ConfigError, match="cannot read config"):
        read_json(tmp_path)  # a folder
