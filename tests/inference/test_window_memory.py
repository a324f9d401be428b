"""Lean sliding window: the band stitcher's masks equal a whole-image accumulator's, default windows per batch,
labels that take over the mask's buffer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unetkit.inference.modes import build_runner
from unetkit.inference.predictor import Predictor
from unetkit.inference.tiling import BandStitcher, blend_weights, default_window_batch, window_grid

from .helpers import make_checkpoint

CLASS_MAP_3 = {"bg": 0, "vessel": 1, "other": 2}
OUT_CLASSES_3 = [
    {"title": t, "shape": "bitmap", "color": c, "geometry_config": {}, "hotkey": ""}
    for t, c in (("bg", "#222222"), ("vessel", "#FF0000"), ("other", "#00FF00"))
]


def whole_image_mask(h, w, windows, probs, weight, classes):
    """The plain method: float32 sums over the whole image, in the same order, then the argmax."""
    acc = np.zeros((classes, h, w), np.float32)
    for win, p in zip(windows, probs):
        acc[:, win.top : win.bottom + 1, win.left : win.right + 1] += p * weight
    return acc.argmax(axis=0).astype(np.uint8)


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("blend", ["constant", "gaussian"])
def test_band_stitcher_mask_equals_whole_image_accumulation(classes, blend):
    h, w, wh, ww = 301, 419, 64, 80
    windows = window_grid(h, w, wh, ww, 20, 17)
    weight = blend_weights(wh, ww, blend)
    rng = np.random.default_rng(classes)
    probs = [rng.random((classes, wh, ww), dtype=np.float32) for _ in windows]
    probs[0][:, :8, :8] = 0.5  # exact ties: the first class wins, as numpy's argmax
    stitcher = BandStitcher(h, w, classes, wh)
    tops = sorted({win.top for win in windows})
    for i, top in enumerate(tops):
        for win, p in zip(windows, probs):
            if win.top == top:
                stitcher.add(win.top, win.left, p, weight)
        stitcher.advance(tops[i + 1] if i + 1 < len(tops) else h)
    mask, _ = stitcher.finish()
    np.testing.assert_array_equal(mask, whole_image_mask(h, w, windows, probs, weight, classes))
    assert mask[:8, :8].max() == 0


@pytest.mark.parametrize("classes", [2, 3])
def test_runner_masks_and_labels_equal_the_plain_method(tmp_path, classes):
    kw = {} if classes == 2 else {"class_map": CLASS_MAP_3, "out_classes": OUT_CLASSES_3}
    ckpt = make_checkpoint(tmp_path / "m", seed=3, **kw)
    predictor = Predictor.from_checkpoint(ckpt, amp="off")
    rng = np.random.default_rng(0)
    image = (rng.random((230, 300, 3)) * 255).astype(np.uint8)
    logits = predictor.backend.logits(predictor.preprocess(image)[None])[0]
    with torch.no_grad():  # random weights: centre each class's logit so that every class wins somewhere
        predictor.backend.model.outc.conv.bias -= torch.from_numpy(np.median(logits, axis=(1, 2)))
    mode = {"name": "sliding_window", "window": {"width": 96, "height": 80}, "min_overlap": {"x": 24, "y": 10},
            "blend": "gaussian", "batch_size": 3}  # fmt: skip
    runner = build_runner(mode, None, predictor)
    windows = runner.grid(230, 300)
    probs = []
    for top in sorted({win.top for win in windows}):  # the runner's batches: row by row, 3 windows at a time
        row = [win for win in windows if win.top == top]
        for j in range(0, len(row), 3):
            crops = [image[x.top : x.bottom + 1, x.left : x.right + 1] for x in row[j : j + 3]]
            probs += [p.transpose(2, 0, 1) for p in predictor.predict_proba_batch(crops)]
    expected = whole_image_mask(230, 300, windows, probs, runner.weights, classes)
    assert len(np.unique(expected)) == classes  # a real test: every class appears
    mask, _, _ = runner.stitch(image)
    np.testing.assert_array_equal(mask, expected)
    ann = runner.apply(image)  # labels built from (and finally in) the mask's own buffer
    assert [lb.class_title for lb in ann.labels] == [t for _, t in runner.kept]
    for label, (mc, _) in zip(ann.labels, runner.kept):
        np.testing.assert_array_equal(label.geometry.full_mask(230, 300), expected == mc.index)


def test_default_windows_per_batch(tmp_path, monkeypatch):
    assert default_window_batch("cpu", 256 * 256) == 2
    assert default_window_batch("cpu", 512 * 512) == 1
    assert default_window_batch("cuda", 512 * 512) == 8
    predictor = Predictor.from_checkpoint(make_checkpoint(tmp_path / "m"), amp="off")
    base = {"name": "sliding_window", "window": {"width": 64, "height": 64}}
    assert build_runner(base, None, predictor).window_batch() == 2
    assert build_runner({**base, "batch_size": 5}, None, predictor).window_batch() == 5
    monkeypatch.setattr(predictor.backend, "device", torch.device("cuda", 0))  # a GPU, faked: nothing runs
    assert build_runner(base, None, predictor).window_batch() == 8
