import json
import warnings

import pytest

from unetkit.errors import ConfigError
from unetkit.training.config import check_model_stride, load_config, parse_config

SEED_README = {
    "lr": 0.001, "epochs": 3, "val_every": 0.5,
    "batch_size": {"val": 6, "train": 12}, "input_size": {"width": 256, "height": 256},
    "gpu_devices": [0], "data_workers": {"val": 0, "train": 3},
    "dataset_tags": {"val": "val", "train": "train"},
    "special_classes": {"neutral": "neutral", "background": "bg"},
    "weights_init_type": "transfer_learning",
}  # fmt: skip


def test_defaults_are_the_documented_ones():
    cfg = parse_config({})
    assert cfg.lr == 0.001  # documented value, not the original code's 0.1
    assert cfg.epochs == 2 and cfg.val_every == 0.5
    assert (cfg.batch_size.train, cfg.batch_size.val) == (1, 1)
    assert (cfg.input_size.width, cfg.input_size.height) == (128, 128)
    assert cfg.gpu_devices == [0]
    assert cfg.dataset_tags.train == "train" and cfg.dataset_tags.val == "val"
    assert cfg.special_classes.background == "bg" and cfg.special_classes.neutral == "neutral"
    assert cfg.weights_init_type == "transfer_learning"
    assert cfg.lr_decreasing.patience == 1000 and cfg.lr_decreasing.lr_divisor == 5
    assert cfg.loss_weights.bce == 1 and cfg.loss_weights.dice == 1
    assert cfg.validate_with_model_eval is True
    assert cfg.unetkit.model == "unet_v2" and cfg.unetkit.amp == "auto"


def test_partial_nested_objects_merge_over_defaults():
    cfg = parse_config({"batch_size": {"train": 4}, "allow_corrupted_samples": {"val": 2}})
    assert (cfg.batch_size.train, cfg.batch_size.val) == (4, 1)
    assert (cfg.allow_corrupted_samples.train, cfg.allow_corrupted_samples.val) == (0, 2)


def test_docs_configs_load_unchanged(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "examples"
    for name in ("train.json", "train_minimal.json"):
        cfg = load_config(root / name)
        assert cfg.input_size.width == 256
    assert parse_config(SEED_README).settings()["batch_size"] == {"train": 12, "val": 6}


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"batch_size": {"trian": 4}}, "$.batch_size.trian", "did you mean 'train'"),
        ({"epoch": 3}, "$.epoch", "did you mean 'epochs'"),
        ({"input_size": {"width": 250}}, "$.input_size.width", "multiple of 16"),
        ({"input_size": {"height": 0}}, "$.input_size.height", "greater than or equal to 1"),
        ({"epochs": "3"}, "$.epochs", "valid integer"),
        ({"lr": 0}, "$.lr", "greater than 0"),
        ({"gpu_devices": []}, "$.gpu_devices", "at least 1"),
        ({"gpu_devices": [0, -1]}, "$.gpu_devices[1]", "greater than or equal to 0"),
        ({"gpu_devices": [1, 1]}, "$.gpu_devices", "duplicate"),
        ({"special_classes": {"background": "x", "neutral": "x"}}, "$.special_classes", "Non-unique special"),
        ({"val_every": 3}, "$.val_every", "no checkpoint"),
        ({"weights_init_type": "random"}, "$.weights_init_type", "transfer_learning"),
        ({"dataset_tags": {"train": ""}}, "$.dataset_tags.train", "at least 1 character"),
        ({"unetkit": {"amp": "fp8"}}, "$.unetkit.amp", "'bf16'"),
        ({"unetkit": {"modle": "unet"}}, "$.unetkit.modle", "did you mean 'model'"),
        ({"loss_weights": {"bce": 0, "dice": 0}}, "$.loss_weights", "both be 0"),
        ({"validate_with_model_eval": "yes"}, "$.validate_with_model_eval", "boolean"),
    ],
)
def test_config_errors_name_the_json_path(data, path, fragment, tmp_path):
    f = tmp_path / "train.json"
    f.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert exc.value.json_path == path
    assert fragment in str(exc.value)
    assert str(exc.value).startswith(str(f))


def test_bad_json_and_missing_file(tmp_path):
    f = tmp_path / "t.json"
    f.write_text("{")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_config(f)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")


def test_momentum_is_accepted_with_a_warning():
    with pytest.warns(UserWarning, match="momentum"):
        cfg = parse_config({"momentum": 0.5})
    assert cfg.momentum == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_config({})


def test_model_stride_check():
    cfg = parse_config({"input_size": {"width": 48, "height": 64}})
    check_model_stride(cfg, 16)
    with pytest.raises(ConfigError) as exc:
        check_model_stride(cfg, 32)
    assert exc.value.json_path == "$.input_size.width"


@pytest.mark.parametrize("number", ["1e400", "Infinity", "-Infinity", "NaN"])
def test_nonfinite_numbers_are_errors_naming_the_file(tmp_path, number):
    f = tmp_path / "train.json"
    f.write_text(f'{{"epochs": 3, "lr": {number}}}', encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert str(exc.value) == f"{f}: $.lr: must be a finite number (got {number})"


def test_nonfinite_numbers_from_python_are_errors():
    with pytest.raises(ConfigError) as exc:
        parse_config({"unetkit": {"model_options": {"dropout": float("nan")}}})
    assert (
        str(exc.value)
        == "training config: $.unetkit.model_options.dropout: must be a finite number (got nan)"
    )
    with pytest.raises(ConfigError, match=r"^training config: \$\.lr: "):
        parse_config({"lr": float("inf")})


def test_every_error_names_the_file(tmp_path):
    """Checks after validation (and those made later, at training start) name the config's file too."""
    f = tmp_path / "train.json"
    f.write_text(json.dumps({"input_size": {"width": 48, "height": 64}}))
    cfg = load_config(f)
    with pytest.raises(ConfigError) as exc:
        check_model_stride(cfg, 32)
    assert str(exc.value).startswith(f"{f}: $.input_size.width: must be a multiple of 32")
    with pytest.raises(ConfigError, match=r"^training config: \$\.input_size\.height: "):
        check_model_stride(parse_config({"input_size": {"height": 48}}), 32)
    f.write_text(json.dumps({"epochs": 1, "val_every": 2}))
    with pytest.raises(ConfigError, match=f"^{f}: \\$\\.val_every: "):
        load_config(f)


def test_resume_errors_name_the_file(tmp_path):
    from unetkit.training.run import _resume_config

    class Run:  # the two things _resume_config reads from a run folder
        path = tmp_path / "run"

        def saved_settings(self):
            return parse_config({"epochs": 3}).settings()

    given = tmp_path / "train.json"
    given.write_text(json.dumps({"epochs": 4}))
    with pytest.raises(ConfigError) as exc:
        _resume_config(Run(), load_config(given), None)
    assert str(exc.value).startswith(f"{given}: $.epochs: the config differs")
    with pytest.raises(ConfigError) as exc:
        _resume_config(Run(), None, "unet_small")
    assert str(exc.value).startswith(
        f"{tmp_path / 'run' / 'train_config.json'}: $.unetkit.model: the run trains"
    )
