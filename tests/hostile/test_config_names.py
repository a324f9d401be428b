"""Inference configs naming classes that do not exist, or a mode without a name, are errors listing the valid
names (they used to run and save no predictions)."""

from __future__ import annotations

import json

import pytest

from inference.helpers import make_checkpoint
from unetkit.errors import ConfigError
from unetkit.inference import Predictor
from unetkit.inference.modes import build_runner
from unetkit.inference_config import load_config
from unetkit.project import ObjClass, ProjectMeta


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.from_checkpoint(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m"), device="cpu")


def test_save_classes_naming_an_unknown_model_class(predictor):
    with pytest.raises(ConfigError) as exc:
        build_runner({"name": "full_image", "model_classes": {"save_classes": ["vesel"]}}, None, predictor)
    assert exc.value.json_path == "$.mode.model_classes.save_classes"
    assert "unknown model class 'vesel' (did you mean 'vessel'?)" in exc.value.message
    assert (
        "valid names: 'vessel', 'bg'" in exc.value.message
        or "valid names: 'bg', 'vessel'" in exc.value.message
    )
    build_runner({"name": "full_image", "model_classes": {"save_classes": ["vessel"]}}, None, predictor)


def test_from_classes_naming_a_class_the_project_does_not_have(predictor):
    meta = ProjectMeta([ObjClass("lemon", "polygon"), ObjClass("kiwi", "rectangle")])
    with pytest.raises(
        ConfigError, match=r"unknown class 'lemons' \(did you mean 'lemon'\?\); valid names: 'lemon', 'kiwi'"
    ):
        build_runner({"name": "bboxes", "from_classes": ["lemons"]}, meta, predictor)
    build_runner({"name": "bboxes", "from_classes": ["lemon"]}, meta, predictor)


def test_a_mode_without_a_name_is_an_error_outside_the_v1_layout(tmp_path):
    f = tmp_path / "inference.json"
    f.write_text(json.dumps({"model": {}, "mode": {"model_classes": {"add_suffix": "_x"}}}))
    with pytest.raises(ConfigError, match="the mode has no 'name'; expected one of full_image, roi") as exc:
        load_config(f)
    assert exc.value.file == str(f) and exc.value.json_path == "$.mode.name"
    f.write_text(json.dumps({"model_classes": {"add_suffix": "_x"}, "gpu_device": 0}))  # v1: no mode at all
    assert load_config(f).mode.name == "full_image"
    f.write_text(json.dumps({"model": {}, "mode": {}}))
    assert load_config(f).mode.name == "full_image"
