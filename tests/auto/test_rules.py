"""The planner's rules on synthetic fingerprints (table-driven), folds and the out-of-fold choices."""

from __future__ import annotations

import numpy as np
import pytest

from unetkit.auto.folds import make_folds
from unetkit.auto.plan import (
    MARGIN,
    Plan,
    batch_for,
    folds_for,
    make_plan,
    memory_batch,
    network_for,
    passes,
    patch_side,
    shape_for,
)
from unetkit.auto.planner import inference_config, parse_budget, training_config
from unetkit.auto.probe import Speed, TrainingSpeed
from unetkit.auto.run import on_disk
from unetkit.auto.select import Choices, OutOfFold, choose, pooled_dice
from unetkit.errors import ConfigError


def fp(*, images=20, side=1000, thickness=None, fraction=0.1, overlap=False):
    return {
        "images": images,
        "size": {"height": {"median": side}, "width": {"median": side}},
        "channels": 3,
        "pixel_type": "uint8",
        "classes": {"fg": {"pixel_fraction": fraction, "present_in": 1.0, "thickness_px": thickness}},
        "overlapping_classes": overlap,
        "neutral_fraction": 0.0,
    }


@pytest.mark.parametrize(
    ("fingerprint", "device", "expected"),
    [
        (fp(side=1000), "cpu", 128),  # the CPU's start side
        (fp(side=1000), "gpu", 256),  # the GPU's
        (fp(side=100), "cpu", 96),  # never above the median image side (a multiple of the stride)
        (fp(side=1000, thickness=12), "cpu", 192),  # 16 thicknesses of context
        (fp(side=1000, thickness=40), "cpu", 256),  # ... at most twice the start side
        (fp(side=20), "cpu", 16),  # at least one stride
    ],
)
def test_patch_side(fingerprint, device, expected):
    assert patch_side(fingerprint, device, 16) == expected


def test_patch_side_is_a_multiple_of_the_training_configs_16_whatever_the_stride():
    assert patch_side(fp(side=24), "cpu", 4) == 16  # a shallow network's stride 4 would allow 24
    assert patch_side(fp(side=100), "cpu", 32) == 96


@pytest.mark.parametrize(
    ("patch", "device", "depth", "width"), [(128, "cpu", 4, 16), (256, "gpu", 5, 32), (32, "cpu", 2, 16)]
)
def test_network(patch, device, depth, width):
    net = network_for(patch, device)
    assert net.model == "unet"
    assert net.model_options == {"base_channels": width, "depth": depth, "deep_supervision": True}


@pytest.mark.parametrize(
    ("patch", "device", "batch"),
    [(128, "cpu", 8), (256, "cpu", 2), (64, "cpu", 16), (256, "gpu", 16), (512, "gpu", 4)],
)
def test_batch(patch, device, batch):
    assert batch_for(patch, device) == batch


@pytest.mark.parametrize(
    ("fingerprint", "device", "start", "shape"),
    [
        (fp(side=1000), "cpu", None, (128, 4, 8)),  # the CPU's start side, depth for 128, 8 patches
        (fp(side=1000), "gpu", None, (256, 5, 16)),
        (fp(side=1000), "cpu", 192, (192, 4, 4)),  # a larger start: larger patches, fewer of them
        (fp(side=1000), "cpu", 96, (96, 3, 14)),  # a smaller one: smaller patches, more, a shallower network
        (fp(side=1000, thickness=12), "cpu", 96, (192, 4, 4)),  # 16 thicknesses, at most twice the start
        (fp(side=150), "cpu", 192, (144, 4, 6)),  # the median image side still caps it (a multiple of 16)
        (fp(side=50), "cpu", None, (48, 2, 16)),  # at most 16 in a batch
    ],
)
def test_shape_follows_the_start_side(fingerprint, device, start, shape):
    patch, network, batch = shape_for(fingerprint, device, start)
    assert (patch, network.model_options["depth"], batch) == shape
    assert patch % 2 ** network.model_options["depth"] == 0


def test_start_patch_override_is_recorded_and_validated():
    plan = Plan(budget_s=60, patch=128, batch_size=8, iterations=10)
    assert plan.start_patch is None and plan.overridden({"start_patch": 192}).start_patch == 192
    with pytest.raises(ConfigError, match=r"\$\.start_patch"):
        plan.overridden({"start_patch": 8})


@pytest.mark.parametrize(
    ("images", "fold_passes", "requested", "folds"),
    [(50, 100.0, None, 5), (50, 99.9, None, 1), (8, 10_000.0, None, 1), (50, 1.0, 3, 3), (4, 1.0, 10, 4)],
)
def test_folds_rule(images, fold_passes, requested, folds):
    assert folds_for(images, fold_passes, requested) == folds


def test_passes_counts_patch_pixels_over_training_pixels():
    # 100 steps of 8 patches of 128² over 40 images of 512²: 13.1 M patch pixels / 10.5 M training pixels
    assert passes(100, 8, 128, 40 * 512 * 512) == pytest.approx(1.25)


def speed(train_step_s=0.1):
    return Speed(train_step_s, "fp32", planning_s=1.0)


def plan_of(fingerprint, budget=600.0, validation_s=0.5):
    training = TrainingSpeed(step_s=0.1, validation_s=validation_s, startup_s=1.0)
    return make_plan(fingerprint, budget_s=budget, device="cpu", speed=speed(), training=training, patch=128,
                     batch_size=8, network=network_for(128, "cpu"))  # fmt: skip


def test_plan_rules_sampling_loss_budget():
    common = plan_of(fp())
    assert common.foreground_prob == 0.33 and common.loss == "ce_vnet_dice" and not common.multilabel
    assert (
        plan_of(fp(fraction=0.005)).foreground_prob == 0.5
    )  # rare foreground: more foreground-centred patches
    over = plan_of(fp(overlap=True))
    assert over.multilabel and over.loss == "auto"
    t = common.time_s
    assert sum(t.values()) <= 600 * (1 - MARGIN) and t["train"] > 0.7 * 600
    # the probes' figures: per fold, startup 1 s + 5 validations of 4 images at 0.5 s an image, then 0.1 s steps
    assert common.folds == 1 and common.iterations == int((t["train"] - 1.0 - 5 * 0.5 * 4) / 0.1)
    slow = plan_of(fp(), validation_s=100.0)  # out-of-fold inference too slow for TTA within the select share
    assert not slow.selection.try_tta and slow.time_s["select"] == 0.25 * 600


def test_plan_round_trip_and_strict_keys(tmp_path):
    plan = plan_of(fp())
    path = plan.write(tmp_path / "plan.json")
    assert Plan.read(path).model_dump() == plan.model_dump()
    raw = path.read_text().replace('"batch_size"', '"batch_size": 8, "ptach"')
    (tmp_path / "bad.json").write_text(raw)
    with pytest.raises(
        ConfigError, match=r"bad\.json: \$\.ptach: unknown key 'ptach' \(did you mean 'patch'\?\)"
    ):
        Plan.read(tmp_path / "bad.json")


def test_training_config_from_the_plan():
    plan = plan_of(fp())
    cfg = training_config(plan, n_train=16)
    assert cfg["input_size"] == {"width": 128, "height": 128}
    assert cfg["epochs"] * 2 >= plan.iterations  # 2 steps per epoch with 16 images and batch 8
    assert cfg["unetkit"]["patch_sampling"] == {"mode": "random_crop", "foreground_prob": 0.33}
    assert (
        cfg["unetkit"]["scheduler"]["name"] == "cosine" and cfg["unetkit"]["loss"]["name"] == "ce_vnet_dice"
    )


def test_plan_overrides_merge_nested_fields_validate_and_reach_the_training_config():
    plan = plan_of(fp())
    sgd = plan.overridden(
        {
            "optimizer": {"name": "sgd"},
            "lr": 0.01,
            "schedule": "poly",
            "network": {"model_options": {"norm": "instance"}},
        }
    )
    assert sgd.optimizer.name == "sgd" and sgd.optimizer.momentum == 0.99 and sgd.optimizer.nesterov
    assert sgd.network.model_options == {
        **plan.network.model_options,
        "norm": "instance",
    }  # merged, not replaced
    assert sgd.iterations == plan.iterations and plan.optimizer.name == "adam"  # the original is unchanged
    cfg = training_config(sgd, n_train=16)["unetkit"]
    assert cfg["optimizer"]["name"] == "sgd" and cfg["scheduler"]["name"] == "poly"
    assert cfg["model_options"]["norm"] == "instance"
    assert plan.overridden(None) is plan
    assert training_config(plan, 16)["data_workers"] == {"train": 0, "val": 0}
    assert training_config(plan.overridden({"data_workers": 1}), 16)["data_workers"] == {"train": 1, "val": 0}
    with pytest.raises(ConfigError, match=r"the plan overrides: \$\.optimizer\.name"):
        plan.overridden({"optimizer": {"name": "lion"}})
    # None takes a key out: the default's deep-supervision option off a model that has none
    res = plan.overridden({"network": {"model": "resunet", "model_options": {"deep_supervision": None}}})
    assert res.network.model == "resunet" and "deep_supervision" not in res.network.model_options
    assert plan.network.model_options["deep_supervision"] is True
    assert plan.overridden({"lr": None}).lr == 0.002  # a field taken out falls back to its default


def test_budget_parsing():
    assert parse_budget("60m") == 3600 and parse_budget("1.5h") == 5400 and parse_budget("90s") == 90
    assert parse_budget(120) == 120
    for bad in ("soon", "10s", "-5m", "infm"):
        with pytest.raises(ConfigError, match="budget"):
            parse_budget(bad)


def test_folds_are_disjoint_cover_everything_and_are_seeded():
    names = [f"ds/{i:02d}.png" for i in range(23)]
    folds = make_folds(names, 5, seed=3)
    vals = [set(f["val"]) for f in folds]
    assert sum(len(v) for v in vals) == 23 and set().union(*vals) == set(names)
    assert all(len(v) in (4, 5) for v in vals)
    for f in folds:
        assert not set(f["train"]) & set(f["val"]) and set(f["train"]) | set(f["val"]) == set(names)
    assert make_folds(names, 5, seed=3) == folds and make_folds(names, 5, seed=4) != folds
    (hold,) = make_folds(names, 1, seed=0, holdout_fraction=0.2)
    assert len(hold["val"]) == 5 and len(hold["train"]) == 18


def _binary(gt, p_fg):
    return OutOfFold("x", gt, np.stack([1 - p_fg, p_fg], axis=2).astype(np.float32))


def test_threshold_choice_on_a_constructed_case():
    gt = np.zeros((20, 20), np.uint8)
    gt[5:15, 5:15] = 1
    p = np.where(gt == 1, 0.35, 0.1)  # an under-confident model: 0.5 misses everything, 0.3 finds it exactly
    choices = choose([_binary(gt, p)], neutral=2, thresholds=[0.3, 0.5, 0.7], min_sizes=[], try_tta=False)
    assert choices.threshold == 0.3 and choices.dice == pytest.approx(1.0)
    step = next(s for s in choices.steps if s["option"] == "threshold")
    assert step["taken"] and step["gain"] == pytest.approx(1.0)


def test_small_component_removal_and_tta_choices():
    gt = np.zeros((30, 30), np.uint8)
    gt[5:20, 5:20] = 1
    p = np.where(gt == 1, 0.9, 0.05)
    p[25:27, 25:27] = 0.9  # a 4-pixel false positive
    flipped = np.where(gt == 1, 0.9, 0.05)  # the "TTA" prediction lacks the speck
    item = _binary(gt, p)
    item.probs_tta = np.stack([1 - flipped, flipped], axis=2).astype(np.float32)
    choices = choose([item], neutral=2, thresholds=[0.5], min_sizes=[0, 16], try_tta=True)
    assert choices.tta and choices.min_sizes == {}  # TTA already removes the speck; the clean-up adds nothing
    choices = choose([item], neutral=2, thresholds=[0.5], min_sizes=[0, 16], try_tta=False)
    assert not choices.tta and choices.min_sizes == {1: 16} and choices.dice == pytest.approx(1.0)


def test_keep_largest_is_chosen_when_false_positives_are_large():
    gt = np.zeros((100, 100), np.uint8)
    gt[10:60, 10:60] = 1
    p = np.where(gt == 1, 0.9, 0.05)
    p[70:90, 70:90] = 0.9  # a 400-pixel false positive: larger than every min_size candidate but 256 … 400
    p[70:90, 10:30] = 0.9
    choices = choose([_binary(gt, p)], neutral=2, thresholds=[0.5], min_sizes=[0, 16, 64, 256], try_tta=False)
    assert choices.keep_largest == [1] and choices.min_sizes == {} and choices.dice == pytest.approx(1.0)
    step = next(s for s in choices.steps if s["option"] == "keep_largest[1]")
    assert step["taken"] and step["gain"] > 0


def test_keep_largest_is_not_chosen_for_objects_of_many_parts():
    gt = np.zeros((100, 100), np.uint8)
    gt[10:40, 10:40] = 1
    gt[60:90, 60:90] = 1  # two true objects
    p = np.where(gt == 1, 0.9, 0.05)
    p[5:7, 90:92] = 0.9  # a 4-pixel speck
    choices = choose([_binary(gt, p)], neutral=2, thresholds=[0.5], min_sizes=[0, 16], try_tta=False)
    assert choices.keep_largest == [] and choices.min_sizes == {1: 16}


def test_neutral_pixels_do_not_count():
    gt = np.zeros((10, 10), np.uint8)
    gt[:5] = 1
    gt[8:] = 2  # neutral
    p = np.where(gt == 1, 0.9, 0.1)
    p[8:] = 0.9  # confident "foreground" on neutral pixels: ignored
    assert pooled_dice([_binary(gt, p)], neutral=2) == pytest.approx(1.0)


def test_out_of_fold_arrays_live_on_disk(tmp_path):
    probs = np.random.default_rng(0).random((40, 30, 2)).astype(np.float32)
    mapped = on_disk(probs, tmp_path / "p.npy", np.float16)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_allclose(mapped, probs, atol=5e-4)


def test_chosen_clean_up_becomes_the_inference_config():
    from types import SimpleNamespace

    from unetkit.inference_config import parse_config

    classes = SimpleNamespace(class_title_to_idx={"bg": 0, "fg": 1, "neutral": 2})  # what the config reads
    plan = Plan(budget_s=60, patch=64, batch_size=2, iterations=10)
    config = inference_config(plan, Choices(threshold=0.4, min_sizes={1: 16}, keep_largest=[1]), classes)
    assert config["mode"]["postprocess"] == {"fg": {"min_size": 16, "keep_largest": 1}}
    assert parse_config(config).mode.threshold == 0.4


@pytest.mark.parametrize(
    ("batch", "step_bytes", "available", "fits"),
    [
        (8, 0, 10**9, 8),  # not measured: unchanged
        (8, 800 * 10**6, 10**9, 5),  # 100 MB a patch, half of 1 GB free
        (8, 8 * 10**9, 10**9, 1),  # not even one patch: the smallest batch
        (16, 100 * 10**6, 100 * 10**9, 16),  # never above the speed rule's batch
    ],
)
def test_memory_rule(batch, step_bytes, available, fits):
    assert memory_batch(batch, step_bytes, available) == fits


def test_the_probe_measures_step_memory():
    import torch

    from unetkit.auto.probe import probe

    small, large = (probe("unet", {"base_channels": 8, "depth": 2}, 3, 2, 64, b, torch.device("cpu"), steps=1)
                    for b in (2, 16))  # fmt: skip
    assert 0 < small.step_bytes < large.step_bytes and large.available_bytes > 0


def _benchmark_variants() -> dict:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import rules

    return rules.VARIANTS


@pytest.mark.parametrize("variant", sorted(_benchmark_variants()))
def test_every_measured_rule_variant_is_a_valid_plan_whose_network_builds_and_trains_a_step(variant):
    """Each variant of benchmarks/rules.py: the overrides validate, reach the training config, and the
    network they describe builds and takes a training step (its outputs weighed as the trainer weighs them)."""
    import torch

    from unetkit.models.registry import create_model

    overrides = _benchmark_variants()[variant]
    plan = plan_of(fp()).overridden(overrides)
    cfg = training_config(plan, n_train=16)
    unetkit = cfg["unetkit"]
    for key, value in (overrides.get("network") or {}).get("model_options", {}).items():
        if value is None:
            assert key not in unetkit["model_options"]  # None takes an option out
        else:
            assert unetkit["model_options"][key] == value
    if "foreground_prob" in overrides:
        assert unetkit["patch_sampling"]["foreground_prob"] == overrides["foreground_prob"]
    net = create_model(unetkit["model"], 2, **unetkit["model_options"]).train()
    out = net(torch.randn(2, 3, 64, 64))
    outs = out if isinstance(out, tuple) else (out,)
    weights = net.output_weights(len(outs)) if hasattr(net, "output_weights") else [1.0] * len(outs)
    loss = sum(w * o.float().mean() for w, o in zip(weights, outs))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)  # every head gets a gradient
