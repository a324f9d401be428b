import json

import pytest
import torch

from conftest import TINY_MODEL, make_project, read_jsonl, tiny_config
from unetkit.models import create_model
from unetkit.models.card import ClassMap
from unetkit.models.checkpoint import load_checkpoint, load_state_file
from unetkit.training import loop, train
from unetkit.training.classes import continue_training_indexing
from unetkit.training.init_weights import continue_training
from unetkit.training.loop import TrainingDiverged

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")


def test_extensions_bf16_augment_patches_cosine_focal_class_weights(tmp_path):
    proj = make_project(tmp_path / "p", n_train=4, n_val=1, size=48, classes=("lemon", "kiwi"), neutral=True)
    ext = {
        "amp": "bf16", "scheduler": {"name": "cosine", "warmup_iters": 2, "min_lr_ratio": 0.1},
        "augment": {"hflip": 0.5, "rot90": 0.5, "scale": [0.8, 1.2], "brightness": 0.1},
        "patch_sampling": {"mode": "random_crop", "foreground_prob": 0.5},
        "loss": {"name": "focal", "class_weights": {"bg": 0.5, "lemon": 2.0}}, "grad_clip": 1.0,
    }  # fmt: skip
    cfg = tiny_config(epochs=2, val_every=1, unetkit=ext, data_workers={"train": 1, "val": 1})
    res = train(proj, cfg, tmp_path / "run", progress=False)
    recs = [r for r in res.records if r["type"] == "train"]
    lrs = [r["lr"] for r in recs]
    assert lrs[0] == pytest.approx(0.005) and lrs[1] == pytest.approx(0.01)  # warm-up then cosine
    assert lrs[3] < lrs[2] and all(r["metrics"]["loss"] == r["metrics"]["loss"] for r in recs)
    assert len([r for r in res.records if r["type"] == "val"]) == 2
    settings = json.loads((res.last_checkpoint / "config.json").read_text())["settings"]
    assert settings["unetkit"]["loss"]["name"] == "focal"


def test_nonfinite_loss_steps_are_skipped_and_the_run_stops(tiny_project, tmp_path, monkeypatch):
    real = loop.build_criterion

    def nan_criterion(*args, **kwargs):
        fn, name = real(*args, **kwargs)
        return (lambda logits, target: fn(logits, target) * float("nan")), name

    monkeypatch.setattr(loop, "build_criterion", nan_criterion)
    cfg = tiny_config(epochs=2, val_every=0.5, unetkit={"max_nonfinite_steps": 4})
    with pytest.raises(TrainingDiverged, match="non-finite for 4 iterations in a row"):
        train(tiny_project, cfg, tmp_path / "run", progress=False)
    recs = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [r["streak"] for r in recs if r["type"] == "nonfinite"] == [1, 2, 3, 4]
    # no step was taken: the checkpoint after 2 iterations still holds the initial weights
    torch.manual_seed(0)
    init = create_model("unet", 2, base_channels=8, depth=2).state_dict()
    saved = load_state_file(tmp_path / "run" / "checkpoints" / "00000000" / "model.pt")
    assert all(
        torch.equal(init[k], saved[k])
        for k in init
        if not k.endswith("num_batches_tracked") and "running" not in k
    )


def test_unet_v2_checkpoint_has_the_original_layout_and_interchanges(tmp_path):
    proj = make_project(tmp_path / "p", n_train=1, n_val=1, size=32)
    cfg = tiny_config(
        epochs=1, val_every=1, batch_size={"train": 1, "val": 1}, lr=1e-4, unetkit={"model": "unet_v2"}
    )
    del cfg["unetkit"]["model_options"]
    res = train(proj, cfg, tmp_path / "run", progress=False)
    ck = res.last_checkpoint
    state = load_state_file(ck / "model.pt")
    assert all(k.startswith("module.") for k in state)
    for key in ("module.encoder_blocks.0.0.weight", "module.encoder_blocks.4.40.weight", "module.bottle.conv2.weight",
                "module.blocks.0.seq1.seq.0.weight", "module.ups.3.conv.weight", "module.last_conv.bias"):  # fmt: skip
        assert key in state
    assert state["module.last_conv.weight"].shape == (2, 64, 1, 1)
    assert (
        sum(v.numel() for k, v in state.items() if "num_batches" not in k and "running" not in k) > 60_000_000
    )
    conf = json.loads((ck / "config.json").read_text())
    assert set(conf) == {"settings", "out_classes", "class_title_to_idx", "unetkit"}
    assert conf["out_classes"][0] == {
        "title": "fg",
        "shape": "bitmap",
        "color": "#FF0000",
        "geometry_config": {},
        "hotkey": "",
    }
    # the same folder without our section is what the original writes: it loads as unet_v2 and continues
    orig = tmp_path / "original"
    orig.mkdir()
    (orig / "model.pt").write_bytes((ck / "model.pt").read_bytes())
    (orig / "config.json").write_text(
        json.dumps({k: conf[k] for k in ("settings", "out_classes", "class_title_to_idx")})
    )
    loaded = load_checkpoint(orig)
    assert loaded.card.original and loaded.card.model == "unet_v2"
    model = create_model("unet_v2", 2)
    continue_training(model, orig)  # strict: every original key is there
    assert torch.equal(
        model.state_dict()["blocks.0.seq1.seq.0.weight"], state["module.blocks.0.seq1.seq.0.weight"]
    )
    assert continue_training_indexing(
        ClassMap.for_project([{"title": "fg", "color": "#FF0000"}], "bg", "neutral"),
        loaded.card.classes.class_title_to_idx, "bg",
    ).class_title_to_idx == {"bg": 0, "fg": 1}  # fmt: skip


def test_patience_policy_divides_lr_and_rebuilds_adam(tiny_project, tmp_path, monkeypatch):
    losses = iter([1.0, 2.0, 3.0, 4.0])
    real = loop.run_validation
    created = []

    def fake_validation(*args, **kwargs):
        metrics = real(*args, **kwargs)
        return {**metrics, "loss": next(losses)}

    monkeypatch.setattr(loop, "run_validation", fake_validation)
    monkeypatch.setattr(loop.Trainer, "_new_optimizer", lambda self, lr: created.append(lr) or torch.optim.Adam(
        self.model.parameters(), lr=lr))  # fmt: skip
    cfg = tiny_config(epochs=2, val_every=0.5, lr=0.01, lr_decreasing={"patience": 1, "lr_divisor": 10},
                      validate_with_model_eval=False)  # fmt: skip
    res = train(tiny_project, cfg, tmp_path / "run", progress=False)
    assert [r["lr"] for r in res.records if r["type"] == "lr"] == pytest.approx([0.001, 0.0001])
    assert created == pytest.approx([0.01, 0.001, 0.0001])  # a new Adam at each decrease
    train_lrs = [r["lr"] for r in res.records if r["type"] == "train"]
    assert train_lrs[0] == pytest.approx(0.01) and train_lrs[-1] == pytest.approx(0.001)  # before the 2nd cut
    best = json.loads((tmp_path / "run" / "checkpoints" / "best.json").read_text())
    assert best["checkpoint"] == "00000000"  # the lowest validation loss


def test_sgd_with_nesterov_momentum_trains_resumes_and_is_recorded(tiny_project, tmp_path):
    """unetkit.optimizer = SGD (nnU-Net's momentum 0.99, Nesterov, weight decay); resume restores its momentum."""
    ext = {**TINY_MODEL, "seed": 0, "optimizer": {"name": "sgd", "weight_decay": 3e-5},
           "scheduler": {"name": "poly", "power": 0.9}, "model_options": {**TINY_MODEL["model_options"],
                                                                          "norm": "instance"}}  # fmt: skip
    cfg = tiny_config(epochs=2, val_every=1, unetkit=ext)
    res = train(tiny_project, cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=False)
    group = state["optimizer"]["param_groups"][0]
    assert group["momentum"] == 0.99 and group["nesterov"] and group["weight_decay"] == 3e-5
    assert all("momentum_buffer" in s for s in state["optimizer"]["state"].values())
    lrs = [r["lr"] for r in res.records if r["type"] == "train"]
    assert lrs[0] == pytest.approx(0.01) and lrs[-1] < lrs[0]  # poly decay
    last = [r for r in res.records if r["type"] == "train"][-1]
    assert 0 < last["data_s"] < last["time"]  # the time spent waiting for batches, within the training time
    settings = json.loads((res.last_checkpoint / "config.json").read_text())["settings"]
    assert settings["unetkit"]["optimizer"]["name"] == "sgd"
    assert settings["unetkit"]["model_options"]["norm"] == "instance"
    loaded = load_checkpoint(res.best_checkpoint)
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in loaded.model.modules())
