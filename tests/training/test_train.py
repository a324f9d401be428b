import json

import pytest
import torch

from conftest import make_project, read_jsonl, tiny_config
from unetkit.cli.main import main
from unetkit.errors import ConfigError
from unetkit.models.checkpoint import load_checkpoint, read_card
from unetkit.training import train

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")


def test_training_run_layout_logs_and_loss_goes_down(tiny_project, tmp_path):
    run = tmp_path / "run"
    res = train(tiny_project, tiny_config(epochs=4, val_every=0.5), run, progress=False)
    recs = read_jsonl(run / "metrics.jsonl")
    train_recs = [r for r in recs if r["type"] == "train"]
    val_recs = [r for r in recs if r["type"] == "val"]
    assert len(train_recs) == 12  # 6 images / batch 2 = 3 iterations × 4 epochs, one line each
    assert [round(r["epoch"], 3) for r in train_recs[:3]] == [0.333, 0.667, 1.0]
    assert set(train_recs[0]["metrics"]) == {"loss", "accuracy", "dice"}
    assert {"loss", "accuracy", "dice", "iou/bg", "iou/fg", "dice/fg", "miou"} <= set(val_recs[0]["metrics"])
    # ValidationSchedule: val_every 0.5 with 3 iterations per epoch → after iterations 2, 3, 5, 6, ...
    assert [r["iteration"] for r in val_recs] == [2, 3, 5, 6, 8, 9, 11, 12]
    assert val_recs[-1]["metrics"]["loss"] < val_recs[0]["metrics"]["loss"]
    assert train_recs[-1]["metrics"]["loss"] < train_recs[0]["metrics"]["loss"]
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir())
    assert ckpts == [f"{i:08d}" for i in range(8)]
    last = json.loads((run / "checkpoints" / "last.json").read_text())
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert last["checkpoint"] == "00000007" and res.last_checkpoint == run / "checkpoints" / "00000007"
    assert best["val_metrics"]["loss"] == min(r["metrics"]["loss"] for r in val_recs)
    cfg = json.loads((run / "checkpoints" / "00000007" / "config.json").read_text())
    assert cfg["class_title_to_idx"] == {"bg": 0, "fg": 1}
    assert [c["title"] for c in cfg["out_classes"]] == ["fg", "bg"]
    assert cfg["out_classes"][1]["color"] == "#222222"
    assert cfg["settings"]["epochs"] == 4 and cfg["settings"]["lr"] == 0.01
    assert cfg["unetkit"]["model"] == "unet" and cfg["unetkit"]["epoch"] == 4.0
    loaded = load_checkpoint(run / "checkpoints" / "00000007")
    assert loaded.card.num_classes == 2
    assert (run / "charts.png").stat().st_size > 1000
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())
    assert [r["type"] for r in recs].count("checkpoint") == 8
    assert (run / "state.pt").exists()
    # a second run into the same folder is refused (nothing is overwritten)
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(tiny_project, tiny_config(), run, progress=False)


def test_overfit_one_image_reaches_dice_above_0_9(tmp_path):
    proj = make_project(tmp_path / "p", n_train=1, n_val=0, tags=("both", "both"), size=32)
    cfg = tiny_config(
        epochs=60, val_every=60, lr=0.02, batch_size={"train": 1, "val": 1},
        dataset_tags={"train": "both", "val": "both"},
        unetkit={"model": "unet", "model_options": {"base_channels": 8, "depth": 2}, "seed": 1},
    )  # fmt: skip
    res = train(proj, cfg, tmp_path / "run", progress=False)
    assert res.last_val_metrics["dice"] > 0.9


def test_multiclass_with_neutral_uses_ce_and_ignores_neutral(tmp_path):
    proj = make_project(tmp_path / "p", classes=("lemon", "kiwi"), neutral=True, n_train=4, n_val=2)
    res = train(proj, tiny_config(epochs=1, val_every=1), tmp_path / "run", progress=False)
    info = read_card(res.last_checkpoint)
    assert info.classes.class_title_to_idx == {"bg": 0, "kiwi": 1, "lemon": 2}
    assert [c["title"] for c in info.classes.out_classes] == ["lemon", "kiwi", "bg"]
    val = res.last_val_metrics
    assert "dice" not in val and {"iou/kiwi", "iou/lemon", "iou/bg"} <= set(val)


@pytest.mark.parametrize(
    ("kwargs", "cfg_over", "message"),
    [
        ({"tags": ("training", "val")}, {}, 'There are no annotations with tag "train"'),
        ({"empty_val": True}, {}, 'There are no objects in annotations with tag "val"'),
        ({}, {"dataset_tags": {"val": "validation"}}, 'There are no annotations with tag "validation"'),
    ],
)
def test_tag_split_errors(tmp_path, kwargs, cfg_over, message):
    proj = make_project(tmp_path / "p", n_train=2, n_val=1, **kwargs)
    with pytest.raises(ConfigError, match=message):
        train(proj, tiny_config(**cfg_over), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_stride_and_unknown_model_errors(tiny_project, tmp_path):
    cfg = tiny_config(input_size={"width": 48, "height": 48})
    cfg["unetkit"] = {"model": "unet", "model_options": {"base_channels": 4, "depth": 5}}
    with pytest.raises(ConfigError) as exc:
        train(tiny_project, cfg, tmp_path / "run", progress=False)
    assert exc.value.json_path == "$.input_size.width" and "multiple of 32" in str(exc.value)
    assert exc.value.file == "training config"  # a dict config: the error still names its source
    with pytest.raises(ConfigError, match="unknown model") as exc:
        train(tiny_project, tiny_config(), tmp_path / "run", model="no_such_model", progress=False)
    assert exc.value.json_path == "$.unetkit.model" and exc.value.file == "training config"
    bad = tiny_config()
    bad["unetkit"]["model_options"] = {"base_chanels": 8}
    with pytest.raises(ConfigError, match="base_chanels") as exc:
        train(tiny_project, bad, tmp_path / "run", progress=False)
    assert exc.value.json_path == "$.unetkit.model_options"


def test_cli_train_and_config_error_exit_code(tiny_project, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"batch_size": {"trian": 2}}))
    assert (
        main(["train", "--project", str(tiny_project), "--config", str(bad), "--out", str(tmp_path / "r")])
        == 2
    )
    err = capsys.readouterr().err
    assert "$.batch_size.trian" in err and "did you mean 'train'" in err
    good = tmp_path / "good.json"
    good.write_text(json.dumps(tiny_config(epochs=1, val_every=1, unetkit={"model": "fcn32s"})))
    rc = main(["train", "--project", str(tiny_project), "--config", str(good), "--out", str(tmp_path / "r"),
               "--model", "unet", "--no-progress"])  # fmt: skip
    assert rc == 0
    assert read_card(tmp_path / "r" / "checkpoints" / "00000000").model == "unet"
    # --resume of a finished run is a no-op; a different config is refused
    assert (
        main(
            [
                "train",
                "--project",
                str(tiny_project),
                "--out",
                str(tmp_path / "r"),
                "--resume",
                "--no-progress",
            ]
        )
        == 0
    )
    good.write_text(json.dumps(tiny_config(epochs=2, val_every=1)))
    rc = main(
        [
            "train",
            "--project",
            str(tiny_project),
            "--config",
            str(good),
            "--out",
            str(tmp_path / "r"),
            "--resume",
        ]
    )
    assert rc == 2 and "differs from the run's train_config.json in epochs" in capsys.readouterr().err


def test_corrupt_samples_are_counted(tiny_project, tmp_path):
    img = next((tiny_project / "ds0" / "img").iterdir())
    img.write_bytes(b"not an image")
    with pytest.raises(Exception, match="Too many errors occurred while processing samples. Allowed: 0."):
        train(tiny_project, tiny_config(epochs=1, val_every=1), tmp_path / "r1", progress=False)
    cfg = tiny_config(epochs=1, val_every=1, allow_corrupted_samples={"train": 1, "val": 1})
    res = train(tiny_project, cfg, tmp_path / "r2", progress=False)
    assert res.last_checkpoint is not None
    assert torch.load(tmp_path / "r2" / "state.pt", weights_only=True)["corrupted"]
