"""Photometric layers: exact pixels (the element's generator is re-derived here) and untouched annotations."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from unetkit.dtl.executor import derive_rng
from unetkit.errors import GraphError

from .helpers import build_layer, run_layer
from .test_layers_geometry import element, one


def run_exact(action, settings, seed=11):
    """(input element, output element, the generator the layer used)."""
    el = element()
    layer = build_layer(action, settings)
    out = one([e for _, e in run_layer(layer, el, seed=seed)])
    assert out.ann is el.ann  # pixels only
    assert out.image.modified and out.image.get().dtype == np.uint8
    return el, out, derive_rng(seed, el.identity, layer.index, 0)


def test_noise_adds_gaussian_noise_and_clips():
    el, out, rng = run_exact("noise", {"mean": 5, "std": 30})
    img = el.image.get().astype(np.float32)
    want = np.clip(img + rng.normal(5, 30, img.shape).astype(np.float32), 0, 255).astype(np.uint8)
    assert np.array_equal(out.image.get(), want)
    assert not np.array_equal(out.image.get(), el.image.get())
    with pytest.raises(GraphError, match="std"):
        build_layer("noise", {"mean": 0})


def test_gaussian_blur_with_random_sigma():
    el, out, rng = run_exact("blur", {"name": "gaussian", "sigma": {"min": 1, "max": 2}})
    sigma = rng.uniform(1, 2)
    want = np.clip(cv2.GaussianBlur(el.image.get().astype(np.float32), (0, 0), sigmaX=sigma), 0, 255).astype(
        np.uint8
    )
    assert np.array_equal(out.image.get(), want)


def test_median_blur_any_odd_kernel():
    for k in (3, 7):
        el, out, _ = run_exact("blur", {"name": "median", "kernel": k})
        assert np.array_equal(out.image.get(), cv2.medianBlur(el.image.get(), k))
    flat = element(image=np.full((10, 12, 3), 9, np.uint8))
    layer = build_layer("blur", {"name": "median", "kernel": 5})
    assert (one([e for _, e in run_layer(layer, flat)]).image.get() == 9).all()


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"name": "median", "kernel": 4}, "kernel"),
        ({"name": "median", "kernel": 1}, "kernel"),
        ({"name": "gaussian", "sigma": {"min": 2, "max": 1}}, "sigma"),
        ({"name": "gaussian", "sigma": {"min": 0, "max": 1}}, "sigma.min"),
        ({"name": "gaussian", "kernel": 3}, "sigma"),
        ({"name": "box", "kernel": 3}, "name"),
        ({"name": "median", "kernel": 3, "extra": 1}, "extra"),
    ],
)
def test_blur_settings_errors(settings, key):
    with pytest.raises(GraphError, match=key.replace(".", r"\.")):
        build_layer("blur", settings)


def test_contrast_brightness_formula():
    settings = {
        "contrast": {"min": 0.5, "max": 1.5, "center_grey": True},
        "brightness": {"min": -10, "max": 10},
    }
    el, out, rng = run_exact("contrast_brightness", settings)
    c, b = rng.uniform(0.5, 1.5), rng.uniform(-10, 10)
    img = el.image.get().astype(np.float32)
    want = np.clip((img - 128.0) * np.float32(c) + np.float32(b) + 128.0, 0, 255).astype(np.uint8)
    assert np.abs(out.image.get().astype(int) - want.astype(int)).max() <= 1
    fixed = {"contrast": {"min": 2, "max": 2}, "brightness": {"min": 0, "max": 0}}
    el, out, _ = run_exact("contrast_brightness", fixed)
    assert np.array_equal(out.image.get(), np.clip(el.image.get().astype(int) * 2, 0, 255).astype(np.uint8))
    with pytest.raises(GraphError, match="contrast"):
        build_layer(
            "contrast_brightness", {"contrast": {"min": 2, "max": 1}, "brightness": {"min": 0, "max": 0}}
        )
    with pytest.raises(GraphError, match="brightness.max"):
        build_layer(
            "contrast_brightness", {"contrast": {"min": 1, "max": 1}, "brightness": {"min": 0, "max": 300}}
        )


def test_random_color_matrix_per_pixel():
    el, out, rng = run_exact("random_color", {"strength": 0.5})
    m = (np.eye(3) + rng.standard_normal((3, 3)) * 0.1).astype(np.float32)
    img = el.image.get()
    want = np.clip(img.reshape(-1, 3).astype(np.float32) @ m, 0, 255).astype(np.uint8).reshape(img.shape)
    assert np.array_equal(out.image.get(), want)
    el, out, _ = run_exact("random_color", {"strength": 0})
    assert np.array_equal(out.image.get(), el.image.get())
    build_layer("random_color", {})  # strength defaults to 0.25
    with pytest.raises(GraphError, match="strength"):
        build_layer("random_color", {"strength": 2})
