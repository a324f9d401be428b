import json
from pathlib import Path

import pytest

from unetkit.errors import ConfigError
from unetkit.inference_config import (
    BboxesMode,
    FullImageMode,
    RoiMode,
    SlidingWindowMode,
    convert_v1,
    load_config,
    parse_config,
    side_pixels,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_docs_config_verbatim():
    cfg = load_config(EXAMPLES / "inference.json")
    assert cfg.model.gpu_device == 0
    assert isinstance(cfg.mode, FullImageMode)
    assert cfg.mode.model_classes.save_names == "__all__"
    assert cfg.mode.model_classes.add_suffix == "_unet"
    assert cfg.mode.save_probabilities is False


@pytest.mark.parametrize("name", ["full_image", "roi", "bboxes", "sliding_window"])
def test_every_example_config_loads(name):
    cfg = load_config(EXAMPLES / f"inference_{name}.json")
    assert cfg.mode.name == name


def test_default_suffix_only_for_full_image():
    assert parse_config({"model": {}, "mode": {}}).mode.model_classes.add_suffix == "_unet"
    assert parse_config({}).mode.model_classes.add_suffix == "_unet"
    for name in ("roi", "bboxes", "sliding_window"):
        mode = parse_config({"model": {}, "mode": {"name": name}}).mode
        assert mode.model_classes.add_suffix == ""
        assert mode.model_classes.save_names == "__all__"
    # the user's suffix wins everywhere
    mode = parse_config({"model": {}, "mode": {"model_classes": {"add_suffix": ""}}}).mode
    assert mode.model_classes.add_suffix == ""


def test_mode_defaults():
    roi = parse_config({"model": {}, "mode": {"name": "roi"}}).mode
    assert isinstance(roi, RoiMode)
    assert (roi.bounds.left, roi.bounds.top, roi.bounds.right, roi.bounds.bottom) == ("0px",) * 4
    assert (roi.save, roi.class_name) == (False, "inference_roi")
    bb = parse_config({"model": {}, "mode": {"name": "bboxes"}}).mode
    assert isinstance(bb, BboxesMode)
    assert (bb.from_classes, bb.save, bb.add_suffix) == ("__all__", False, "_input_bbox")
    sw = parse_config({"model": {}, "mode": {"name": "sliding_window"}}).mode
    assert isinstance(sw, SlidingWindowMode)
    assert (sw.window.width, sw.window.height, sw.min_overlap.x, sw.min_overlap.y) == (128, 128, 0, 0)
    assert (sw.save, sw.class_name, sw.blend, sw.save_probabilities) == (
        False,
        "sliding_window",
        "constant",
        False,
    )


def test_legacy_save_classes_and_save_names():
    a = parse_config({"model": {}, "mode": {"model_classes": {"save_classes": ["vessel"]}}}).mode
    b = parse_config({"model": {}, "mode": {"model_classes": {"save_names": ["vessel"]}}}).mode
    assert a.model_classes == b.model_classes
    assert a.model_classes.rename("vessel") == "vessel_unet"
    assert a.model_classes.rename("bg") is None
    tags = parse_config({"model": {}, "mode": {"model_tags": {"save_names": "__all__", "add_suffix": "_t"}}})
    assert tags.mode.model_tags.rename("x") == "x_t"


def test_v1_layout_converted():
    raw = {
        "mode": {"source": "roi", "bounds": {"left": "1px"}},
        "model_classes": {"save_classes": ["vessel"], "add_suffix": "_old"},
        "gpu_device": 1,
    }
    assert convert_v1(raw) == {
        "mode": {
            "name": "roi",
            "bounds": {"left": "1px"},
            "model_classes": {"save_classes": ["vessel"], "add_suffix": "_old"},
        },
        "model": {"gpu_device": 1},
    }
    cfg = parse_config(raw)
    assert cfg.model.gpu_device == 1
    assert cfg.mode.name == "roi" and cfg.mode.model_classes.add_suffix == "_old"
    # a 2018 config with gpu_devices / existing_objects fails the strict `model` section
    with pytest.raises(ConfigError) as e:
        parse_config(
            {"mode": {"source": "full_image"}, "gpu_devices": [0], "existing_objects": {}}, file="c.json"
        )
    assert e.value.json_path in ("$.model.gpu_devices", "$.model.existing_objects")
    assert "v1 layout" in str(e.value)


@pytest.mark.parametrize(
    "doc, path, words",
    [
        ({"model": {"gpu_device": -1}}, "$.model.gpu_device", "greater than or equal"),
        ({"model": {"gpu_devise": 0}}, "$.model.gpu_devise", "did you mean 'gpu_device'?"),
        ({"model": {}, "mode": {"name": "nope"}}, "$.mode.name", "unknown mode"),
        ({"model": {}, "mode": {"name": "sliding_window_det"}}, "$.mode.name", "detectors"),
        ({"model": {}, "mode": {"name": "roi", "bounds": {"left": "5"}}}, "$.mode.bounds.left", "'5px'"),
        ({"model": {}, "mode": {"name": "roi", "bounds": {"left": "1.5%"}}}, "$.mode.bounds.left", "'5px'"),
        ({"model": {}, "mode": {"name": "roi", "extra": 1}}, "$.mode.extra", "unknown key"),
        ({"model": {}, "mode": {"name": "roi", "class_name": ""}}, "$.mode.class_name", "at least 1"),
        ({"model": {}, "mode": {"name": "bboxes", "from_classes": "all"}}, "$.mode.from_classes", "__all__"),
        (
            {"model": {}, "mode": {"model_classes": {"save_names": [], "save_classes": []}}},
            "$.mode.model_classes",
            "not both",
        ),
        (
            {
                "model": {},
                "mode": {
                    "name": "sliding_window",
                    "window": {"width": 8, "height": 8},
                    "min_overlap": {"x": 8, "y": 0},
                },
            },
            "$.mode.min_overlap",
            "overlap is too high",
        ),
        (
            {"model": {}, "mode": {"name": "sliding_window", "window": {"width": 0}}},
            "$.mode.window.width",
            "greater",
        ),
        ({"model": {}, "mode": {"name": "sliding_window", "blend": "cubic"}}, "$.mode.blend", "constant"),
        ({"model": {}, "mode": {"name": "full_image", "window": {}}}, "$.mode.window", "unknown key"),
        ({"model": {}, "mode": []}, "$.mode", "object"),
    ],
)
def test_errors_name_the_setting(doc, path, words):
    with pytest.raises(ConfigError) as e:
        parse_config(doc, file="inference.json")
    assert e.value.json_path == path
    assert words in str(e.value)
    assert str(e.value).startswith("inference.json: ")


def test_load_config_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"model": {"gpu_device": 2}, "mode": {"name": "roi"}}))
    assert load_config(ok).model.gpu_device == 2


def test_side_pixels_like_the_original():
    assert side_pixels("12px", 100) == 12
    assert side_pixels("-3px", 100) == -3
    assert side_pixels("10%", 99) == 9  # int() truncates
    assert side_pixels("-10%", 99) == -9  # toward zero
    assert side_pixels("0%", 5) == 0


@pytest.mark.parametrize(
    ("mode", "path", "suggestion"),
    [
        ({"name": "roi", "bouns": {}}, "$.mode.bouns", "bounds"),
        ({"name": "roi", "bounds": {"lefft": "1px"}}, "$.mode.bounds.lefft", "left"),
        ({"name": "sliding_window", "min_overlpa": {}}, "$.mode.min_overlpa", "min_overlap"),
        ({"model_classes": {"save_clases": "__all__"}}, "$.mode.model_classes.save_clases", "save_classes"),
        ({"save_probabilites": True}, "$.mode.save_probabilites", "save_probabilities"),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(tmp_path, mode, path, suggestion):
    f = tmp_path / "inference.json"
    f.write_text(json.dumps({"model": {"gpu_device": 0}, "mode": mode}))
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert e.value.json_path == path
    assert str(e.value).startswith(f"{f}: {path}: unknown key ")
    assert f"(did you mean {suggestion!r}?)" in str(e.value)


def test_unknown_mode_suggests_the_closest():
    with pytest.raises(
        ConfigError, match=r"unknown mode 'sliding_windows'.*\(did you mean 'sliding_window'\?\)"
    ):
        parse_config({"model": {}, "mode": {"name": "sliding_windows"}})


@pytest.mark.parametrize("number", ["1e400", "Infinity", "NaN"])
def test_nonfinite_numbers_are_errors_naming_the_file(tmp_path, number):
    f = tmp_path / "inference.json"
    f.write_text(f'{{"model": {{}}, "mode": {{"name": "sliding_window", "window": {{"width": {number}}}}}}}')
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == f"{f}: $.mode.window.width: must be a finite number (got {number})"
    with pytest.raises(ConfigError, match=r"^inference config: \$\.mode\.window\.height: must be a finite"):
        parse_config({"model": {}, "mode": {"name": "sliding_window", "window": {"height": float("inf")}}})


def test_errors_without_a_file_name_the_config():
    with pytest.raises(ConfigError, match=r"^inference config: \$\.mode\.name: unknown mode"):
        parse_config({"model": {}, "mode": {"name": "nope"}})
    with pytest.raises(ConfigError, match=r"^inference config: \$\.mode\.min_overlap: "):
        parse_config(
            {"model": {}, "mode": {"name": "sliding_window", "window": {"width": 4}, "min_overlap": {"x": 4}}}
        )
