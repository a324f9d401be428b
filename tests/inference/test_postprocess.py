"""Threshold and clean-up at inference: exact results on constructed masks, and through the modes."""

import numpy as np
import pytest

from unetkit.errors import ConfigError
from unetkit.inference import Predictor
from unetkit.inference.modes import build_runner
from unetkit.inference.postprocess import clean_mask, clean_region, decide
from unetkit.inference_config import ClassCleanup, parse_config

from .helpers import make_checkpoint

# components (8-connected): A = 1 pixel, B = 2 diagonal pixels, C = a 3×3 ring with a 1-pixel hole (8 pixels),
# D = a 2×3 block touching the border with a notch that is open to the border (not a hole)
REGION = np.array(
    [
        [1, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 0, 1, 1, 1],
        [0, 0, 0, 0, 0, 0, 1, 0, 1],
        [0, 0, 0, 0, 0, 0, 1, 1, 1],
        [1, 1, 1, 0, 0, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0, 0, 0, 0],
    ],
    bool,
)
A = np.zeros_like(REGION)
A[0, 0] = True
B = np.zeros_like(REGION)
B[1, 3] = B[2, 4] = True
C = np.zeros_like(REGION)
C[2:5, 6:9] = True
C[3, 7] = False
D = REGION & ~A & ~B & ~C


def test_min_size_removes_small_components():
    assert (
        clean_region(REGION, ClassCleanup(min_size=2)) == (REGION & ~A)
    ).all()  # B is one 8-connected piece
    assert (clean_region(REGION, ClassCleanup(min_size=6)) == C).all()
    assert not clean_region(REGION, ClassCleanup(min_size=9)).any()


def test_keep_largest():
    assert (clean_region(REGION, ClassCleanup(keep_largest=1)) == C).all()
    assert (clean_region(REGION, ClassCleanup(keep_largest=2)) == (C | D)).all()
    # min_size first: only B, C, D are left, then the 3 largest of them
    assert (clean_region(REGION, ClassCleanup(min_size=2, keep_largest=3)) == (REGION & ~A)).all()


def test_fill_holes_only_enclosed():
    filled = clean_region(REGION, ClassCleanup(fill_holes=True))
    expected = REGION.copy()
    expected[3, 7] = True  # the ring's hole; D's notch at (6, 1) is open to the border
    assert (filled == expected).all()
    assert (
        clean_region(REGION, ClassCleanup(keep_largest=1, fill_holes=True)) == (C | (expected & ~REGION))
    ).all()


def test_clean_mask_multiclass():
    mask = np.where(REGION, 1, 0).astype(np.uint8)
    mask[3, 7] = 2  # another class inside the ring's hole
    mask[6, 1] = 2
    out = clean_mask(mask, {1: ClassCleanup(min_size=3, fill_holes=True), 2: ClassCleanup(min_size=2)})
    expected = np.where(REGION & ~A & ~B, 1, 0)
    expected[3, 7] = 1  # filled by class 1 first (class index order); class 2's pixel at (6, 1) is too small
    assert (out == expected).all()
    assert (mask[3, 7], mask[0, 0]) == (2, 1)  # the input is left as it is


def test_decide_threshold_and_argmax():
    probs = np.array([[[0.7, 0.3], [0.4, 0.6]], [[0.69, 0.31], [0.0, 1.0]]], np.float32)
    assert decide(probs).tolist() == [[0, 1], [0, 1]]
    assert decide(probs, 0.3).tolist() == [[1, 1], [1, 1]]
    assert decide(probs, 0.31).tolist() == [[0, 1], [1, 1]]
    with pytest.raises(ValueError, match="binary"):
        decide(np.zeros((2, 2, 3), np.float32), 0.5)


@pytest.fixture(scope="module")
def predictor(random_ckpt):
    return Predictor.from_checkpoint(random_ckpt)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, (48, 40, 3), dtype=np.uint8)


def vessel_mask(ann):
    m = np.zeros((ann.height, ann.width), bool)
    for lbl in ann.labels:
        if lbl.class_title in ("vessel", "vessel_unet"):  # the _unet suffix is full_image's default only
            lbl.geometry.draw(m, True)
    return m


def speckle_threshold(p: np.ndarray) -> float:
    """A threshold between two scores near the 70th percentile (the same for any float32 rounding of the net)."""
    values = np.unique(p)
    k = int(0.7 * values.size)
    return float(values[k - 1] + values[k]) / 2


def test_modes_threshold(predictor, image):
    p = predictor.predict_proba(image)[:, :, 1]
    t = speckle_threshold(p)
    assert ((p >= t) != (p >= 0.5)).any()
    full = vessel_mask(build_runner({"threshold": t}, None, predictor).apply(image))
    assert (full == (p >= t)).all()
    window = {"name": "sliding_window", "window": {"width": 40, "height": 48}, "threshold": t}
    assert (vessel_mask(build_runner(window, None, predictor).apply(image)) == full).all()
    roi = {
        "name": "roi",
        "bounds": {"left": "0px", "top": "0px", "right": "0px", "bottom": "0px"},
        "threshold": t,
    }
    assert (vessel_mask(build_runner(roi, None, predictor).apply(image)) == full).all()


def test_modes_postprocess(predictor, image):
    rule = {"min_size": 5, "keep_largest": 2, "fill_holes": True}
    p = predictor.predict_proba(image)[:, :, 1]
    t = speckle_threshold(p)
    expected = clean_region(p >= t, ClassCleanup(**rule))
    assert 0 < expected.sum() != (p >= t).sum()  # the rule changes something
    for mode in ({}, {"name": "sliding_window", "window": {"width": 24, "height": 24}}):
        mode = {**mode, "threshold": t}
        ann = build_runner({**mode, "postprocess": {"vessel": rule}}, None, predictor).apply(image)
        if mode:  # windows see other context: compare with the mode's own raw mask
            raw = vessel_mask(build_runner(mode, None, predictor).apply(image))
            assert (vessel_mask(ann) == clean_region(raw, ClassCleanup(**rule))).all()
        else:
            assert (vessel_mask(ann) == expected).all()


def test_config_errors(predictor, tmp_path):
    with pytest.raises(ConfigError, match=r"\$\.mode\.threshold"):
        parse_config({"model": {}, "mode": {"threshold": 1.5}})
    with pytest.raises(ConfigError, match=r"\$\.mode\.postprocess\.vessel\.min_sise"):
        parse_config({"model": {}, "mode": {"postprocess": {"vessel": {"min_sise": 3}}}})
    with pytest.raises(ConfigError, match=r"\$\.mode\.postprocess\.vessel\.keep_largest"):
        parse_config({"model": {}, "mode": {"postprocess": {"vessel": {"keep_largest": 0}}}})
    with pytest.raises(ConfigError, match=r"\$\.mode\.postprocess\.road: no model class 'road'"):
        build_runner({"postprocess": {"road": {"min_size": 3}}}, None, predictor)
    three = make_checkpoint(
        tmp_path / "three",
        out_classes=[{"title": t, "shape": "bitmap", "color": "#FF0000"} for t in ("bg", "a", "b")],
        class_map={"bg": 0, "a": 1, "b": 2},
    )
    with pytest.raises(ConfigError, match="binary model"):
        build_runner({"threshold": 0.5}, None, Predictor.from_checkpoint(three))
