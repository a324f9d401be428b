"""The loss-weighting rule candidate: weights from the fingerprint's pixel shares, into the training config."""

from __future__ import annotations

import math

import pytest

from unetkit.auto.plan import MAX_CLASS_WEIGHT, class_weights_for, make_plan, network_for
from unetkit.auto.planner import training_config
from unetkit.auto.probe import Speed, TrainingSpeed
from unetkit.config_base import validate_config
from unetkit.errors import ConfigError
from unetkit.training.config import TrainConfig


def fingerprint(shares: dict[str, float], neutral: float = 0.0, overlap: bool = False) -> dict:
    return {
        "images": 20,
        "size": {"height": {"median": 512}, "width": {"median": 512}},
        "channels": 3,
        "pixel_type": "uint8",
        "classes": {
            t: {"pixel_fraction": f, "present_in": 1.0, "thickness_px": None} for t, f in shares.items()
        },
        "overlapping_classes": overlap,
        "neutral_fraction": neutral,
    }


@pytest.mark.parametrize(
    ("shares", "neutral", "expected"),
    [
        ({"fg": 0.04}, 0.0, {"fg": round(math.sqrt(0.96 / 0.04), 3)}),  # 4.899: a thin binary class
        ({"fg": 0.6}, 0.0, {"fg": 1.0}),  # a class larger than the background is never weighed down
        (
            {"road": 0.3, "pole": 0.003, "sign": 0.0},
            0.1,
            {"road": 1.411, "pole": MAX_CLASS_WEIGHT, "sign": 1.0},
        ),
        (
            {"a": 0.5, "b": 0.5},
            0.0,
            {"a": 1.0, "b": 1.0},
        ),  # no background: the largest class is the reference
    ],
)
def test_inverse_sqrt_frequency_weights(shares, neutral, expected):
    assert class_weights_for(fingerprint(shares, neutral), "inverse_sqrt_frequency") == expected
    assert class_weights_for(fingerprint(shares, neutral), "none") is None


def plan_for(fp: dict):
    speed = Speed(0.1, "fp32", planning_s=1.0)
    training = TrainingSpeed(step_s=0.1, validation_s=0.5, startup_s=1.0)
    return make_plan(fp, budget_s=600.0, device="cpu", speed=speed, training=training, patch=128, batch_size=8,
                     network=network_for(128, "cpu"))  # fmt: skip


def test_the_weights_reach_a_valid_training_config_only_when_asked():
    fp = fingerprint({"road": 0.3, "pole": 0.003}, 0.1)
    plan = plan_for(fp)
    assert plan.class_weighting == "none"  # not a rule (yet): measured as a variant
    assert "class_weights" not in training_config(plan, 16)["unetkit"]["loss"]
    weighted = plan.overridden({"class_weighting": "inverse_sqrt_frequency"})
    cfg = training_config(weighted, 16)
    assert cfg["unetkit"]["loss"] == {"name": "ce_vnet_dice", "class_weights": {"road": 1.411, "pole": 10.0}}
    validate_config(TrainConfig, cfg, file="auto's training config")  # the trainer accepts it
    multilabel = plan_for(fingerprint({"a": 0.3, "b": 0.2}, overlap=True))
    assert multilabel.multilabel
    assert "class_weights" not in training_config(multilabel.overridden(
        {"class_weighting": "inverse_sqrt_frequency"}), 16)["unetkit"]["loss"]  # fmt: skip
    with pytest.raises(ConfigError, match=r"class_weighting"):
        plan.overridden({"class_weighting": "inverse"})
