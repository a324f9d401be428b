"""Checkpoint folders: round trips, the original Supervisely layout, atomic writes, clear errors, transfer."""

from __future__ import annotations

import json

import pytest
import torch

from unetkit.errors import FormatError, UnetkitError
from unetkit.models import create_model
from unetkit.models.card import ClassMap, ModelCard, Preprocessing, Provenance
from unetkit.models.checkpoint import (
    load_checkpoint,
    load_state_dict_flexible,
    read_card,
    resolve_checkpoint_dir,
    save_checkpoint,
    transfer_weights,
)

SETTINGS = {"input_size": {"width": 64, "height": 48}, "lr": 0.001}
OUT_CLASSES = [
    {"title": "vessel", "shape": "bitmap", "color": "#FF0000", "geometry_config": {}, "hotkey": ""},
    {"title": "bg", "shape": "bitmap", "color": "#222222", "geometry_config": {}, "hotkey": ""},
]
MAPPING = {"bg": 0, "vessel": 1}
SMALL = {"base_channels": 4, "depth": 2}

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.* is deprecated:DeprecationWarning")


def tiny(classes: int = 2, seed: int = 0, **options):
    torch.manual_seed(seed)
    model = create_model("unet", classes, **{**SMALL, **options})
    with torch.no_grad():  # make BN statistics non-trivial so that buffers are checked too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return model


def card(model="unet", options=SMALL, mapping=MAPPING, **provenance) -> ModelCard:
    return ModelCard(
        model=model, model_options=options, classes=ClassMap(out_classes=OUT_CLASSES, class_title_to_idx=mapping),
        preprocessing=Preprocessing(input_size=(64, 48)), settings=SETTINGS, provenance=Provenance(**provenance),
    )  # fmt: skip


def save_tiny(path, model=None, **provenance):
    return save_checkpoint(path, model if model is not None else tiny(), card(**provenance))


def test_round_trip(tmp_path):
    model = tiny().eval()
    save_tiny(tmp_path / "ck", model, epoch=2.5, val_metrics={"dice": 0.7})
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["config.json", "model.pt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temporary leftovers
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert config["settings"] == SETTINGS and config["class_title_to_idx"] == MAPPING
    section = config["unetkit"]
    assert section["model"] == "unet" and section["model_options"] == SMALL and section["format_version"] == 1
    assert section["input_size"] == {"width": 64, "height": 48} and section["resize"] == "bicubic"
    loaded = load_checkpoint(tmp_path / "ck")
    assert not loaded.model.training
    info = loaded.card
    assert (info.model, info.num_classes, info.in_channels, info.input_size) == ("unet", 2, 3, (64, 48))
    assert info.provenance.epoch == 2.5 and info.provenance.val_metrics == {"dice": 0.7} and not info.original
    assert info.preprocessing.mean == (0.485, 0.456, 0.406) and list(info.classes.out_classes) == OUT_CLASSES
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert read_card(tmp_path / "ck") == info


def test_overwrite_existing_folder_and_compiled_or_wrapped_models(tmp_path):
    save_tiny(tmp_path / "ck")
    model = tiny(seed=1)
    save_tiny(tmp_path / "ck", torch.compile(model))  # not run, so nothing is compiled; keys lose _orig_mod.
    state = torch.load(tmp_path / "ck" / "model.pt", weights_only=True)
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in state)
    assert torch.equal(state["outc.conv.weight"], model.outc.conv.weight)
    save_tiny(tmp_path / "ck2", torch.nn.DataParallel(model))
    assert "outc.conv.weight" in torch.load(tmp_path / "ck2" / "model.pt", weights_only=True)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["config.json", "model.pt"]


def test_unet_v2_keys_carry_module_prefix(tmp_path):
    model = create_model("unet_v2", 2, compact=True)
    save_checkpoint(tmp_path / "ck", model, card("unet_v2", {"compact": True, "encoder_weights": "imagenet"}))
    state = torch.load(tmp_path / "ck" / "model.pt", weights_only=True)
    assert all(k.startswith("module.") for k in state)
    info = read_card(tmp_path / "ck")
    assert info.model_options == {"compact": True}  # creation-only options are not stored
    loaded = load_checkpoint(tmp_path / "ck")
    assert torch.equal(loaded.model.last_conv.weight, model.last_conv.weight)


def test_original_supervisely_checkpoint(tmp_path):
    """config.json without the unetkit key + module.-prefixed weights → unet_v2 at settings.input_size."""
    torch.manual_seed(3)
    src = create_model("unet_v2", 3)
    folder = tmp_path / "00000007"
    folder.mkdir()
    state = {"module." + k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, folder / "model.pt")
    config = {
        "settings": {"input_size": {"width": 256, "height": 128}, "epochs": 3},
        "out_classes": [{"title": t, "shape": "bitmap", "color": "#222222"} for t in ("lemon", "kiwi", "bg")],
        "class_title_to_idx": {"bg": 0, "kiwi": 1, "lemon": 2},
    }
    (folder / "config.json").write_text(json.dumps(config))
    loaded = load_checkpoint(folder)
    info = loaded.card
    assert info.original and info.model == "unet_v2" and info.num_classes == 3
    assert info.input_size == (256, 128)
    assert torch.equal(loaded.model.blocks[0].seq1.seq[0].weight, src.blocks[0].seq1.seq[0].weight)


def test_errors_are_clear(tmp_path):
    with pytest.raises(UnetkitError, match="checkpoint folder not found"):
        load_checkpoint(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnetkitError, match="config.json is missing"):
        load_checkpoint(tmp_path / "empty")
    save_tiny(tmp_path / "ck")
    cfg = tmp_path / "ck" / "config.json"
    good = cfg.read_text()
    cfg.write_text(good[:40])
    with pytest.raises(FormatError, match=r"config.json: \$: invalid JSON"):
        read_card(tmp_path / "ck")
    broken = json.loads(good)
    broken["class_title_to_idx"]["vessel"] = "one"
    cfg.write_text(json.dumps(broken))
    with pytest.raises(FormatError, match=r"\$\.class_title_to_idx\.vessel: Input should be a valid integer"):
        read_card(tmp_path / "ck")
    broken = json.loads(good)
    broken["unetkit"]["model"] = "no_such_net"
    cfg.write_text(json.dumps(broken))
    with pytest.raises(UnetkitError, match="unknown model 'no_such_net'"):
        load_checkpoint(tmp_path / "ck")
    cfg.write_text(good)
    weights = tmp_path / "ck" / "model.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UnetkitError, match=r"model.pt: cannot read weights"):
        load_checkpoint(tmp_path / "ck")
    weights.unlink()
    with pytest.raises(UnetkitError, match="model.pt: weights file not found"):
        load_checkpoint(tmp_path / "ck")


def test_weights_that_do_not_fit_are_refused(tmp_path):
    save_tiny(tmp_path / "ck")
    cfg = tmp_path / "ck" / "config.json"
    config = json.loads(cfg.read_text())
    config["class_title_to_idx"]["extra"] = 2  # now 3 classes, weights have 2
    cfg.write_text(json.dumps(config))
    with pytest.raises(UnetkitError, match=r"shape mismatches: outc\.conv\.weight"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(UnetkitError, match="implies 3 output classes but the model has 2"):
        save_checkpoint(tmp_path / "x", tiny(), card(mapping={"bg": 0, "a": 1, "b": 2}))
    assert not (tmp_path / "x").exists()
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(UnetkitError, match="exists and is not a folder"):
        save_tiny(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "keep me"


def test_flexible_loading_strips_and_adds_prefix():
    src = tiny(seed=4)
    prefixed = {"module." + k: v for k, v in src.state_dict().items()}
    dst = tiny(seed=5)
    load_state_dict_flexible(dst, prefixed)
    assert torch.equal(dst.inc.double_conv[0].weight, src.inc.double_conv[0].weight)
    wrapped = torch.nn.DataParallel(tiny(seed=6))
    load_state_dict_flexible(wrapped, src.state_dict())
    assert torch.equal(wrapped.module.inc.double_conv[0].weight, src.inc.double_conv[0].weight)
    partial = dict(src.state_dict())
    partial.pop("outc.conv.bias")
    partial["junk.weight"] = torch.zeros(1)
    with pytest.raises(UnetkitError, match=r"missing keys: outc\.conv\.bias; unexpected keys: junk\.weight"):
        load_state_dict_flexible(tiny(), partial)


def test_transfer_weights_reports_by_name():
    src = tiny(classes=2, seed=7)
    state = {"module." + k: v for k, v in src.state_dict().items()}
    dst = tiny(classes=3, seed=8)
    before = dst.outc.conv.weight.clone()
    report = transfer_weights(dst, state, skip_substrings=("outc",))
    assert report.skipped == ["outc.conv.weight", "outc.conv.bias"]
    assert not report.shape_mismatches and not report.unexpected
    assert report.missing == []  # skipped keys are reported as skipped, nothing else is absent
    assert torch.equal(dst.outc.conv.weight, before)
    assert torch.equal(
        dst.down2.maxpool_conv[1].double_conv[0].weight, src.down2.maxpool_conv[1].double_conv[0].weight
    )
    report = transfer_weights(tiny(classes=3), state, skip_substrings=("last_conv",))
    assert [k for k, *_ in report.shape_mismatches] == ["outc.conv.weight", "outc.conv.bias"]
    assert report.shape_mismatches[0][1:] == ((2, 4, 1, 1), (3, 4, 1, 1))
    assert len(report.copied) == len(src.state_dict()) - 2


def test_run_folders_and_pointers_resolve_to_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    save_tiny(run / "checkpoints" / "00000000")
    save_tiny(run / "checkpoints" / "00000001")
    (run / "checkpoints" / "best.json").write_text(json.dumps({"path": "checkpoints/00000000"}))
    (run / "checkpoints" / "last.json").write_text(json.dumps({"path": "checkpoints/00000001"}))
    assert resolve_checkpoint_dir(run) == run / "checkpoints" / "00000000"
    assert resolve_checkpoint_dir(run / "checkpoints" / "best") == run / "checkpoints" / "00000000"
    assert resolve_checkpoint_dir(run / "checkpoints" / "last") == run / "checkpoints" / "00000001"
    assert read_card(run).path == run / "checkpoints" / "00000000"
    assert load_checkpoint(run / "checkpoints" / "last").card.path == run / "checkpoints" / "00000001"
    (run / "checkpoints" / "best.json").write_text("[]")
    with pytest.raises(FormatError, match="best.json: \\$.path"):
        resolve_checkpoint_dir(run)


def test_checkpoint_files_get_normal_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        ck = save_tiny(tmp_path / "ck")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ck).st_mode) & 0o055 == 0o055  # group/others can read and enter
    for name in ("model.pt", "config.json"):
        assert stat.S_IMODE(os.stat(ck / name).st_mode) & 0o044 == 0o044
