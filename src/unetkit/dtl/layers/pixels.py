"""Photometric layers (pixels only, the annotation is untouched): noise, blur, contrast_brightness,
random_color (docs/original-behaviour.md, "DTL layers"). Random values come from the element's generator
(``ctx.rng``)."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from unetkit.dtl.base import FreeSettings, Layer, StrictSettings
from unetkit.dtl.element import ImageRef
from unetkit.dtl.registry import register_layer

EXAMPLE_SETTINGS: dict[str, dict] = {
    "noise": {"mean": 0, "std": 10},
    "blur": {"name": "gaussian", "sigma": {"min": 0.5, "max": 1.5}},
    "contrast_brightness": {
        "contrast": {"min": 0.8, "max": 1.2, "center_grey": True},
        "brightness": {"min": -20, "max": 20},
    },
    "random_color": {"strength": 0.25},
}


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img, 0, 255).astype(np.uint8)


def _check_min_max(layer: Layer, rng, key: str) -> None:
    if rng.min > rng.max:
        raise layer.error(f'"min" should be <= than "max" for "{key}".', key=key)


def _with_image(el, img: np.ndarray):
    return el.replace(image=ImageRef.from_array(img))


@register_layer
class NoiseLayer(Layer):
    """Add Gaussian noise N(mean, std) per pixel and channel, clip to 0..255."""

    action = "noise"

    class Settings(StrictSettings):
        mean: float
        std: float = Field(ge=0)

    def process(self, el, ctx):
        img = el.image.get().astype(np.float32)
        img += ctx.rng.normal(self.settings.mean, self.settings.std, img.shape).astype(np.float32)
        yield 0, _with_image(el, _to_u8(img))


class SigmaRange(StrictSettings):
    min: float = Field(ge=0.01)
    max: float = Field(ge=0.01)


class BlurSettings(StrictSettings):
    """{"name": "gaussian", "sigma": {"min", "max"}} or {"name": "median", "kernel": odd int >= 3}."""

    name: Literal["gaussian", "median"]
    sigma: SigmaRange | None = None
    kernel: int | None = Field(default=None, ge=3)


@register_layer
class BlurLayer(Layer):
    """Gaussian blur with sigma ~ U(min, max) (kernel derived from sigma) or median blur with an odd kernel.
    Median works for any odd kernel (the original's float32 median only accepted 3 and 5)."""

    action = "blur"
    Settings = BlurSettings

    def validate(self):
        s = self.settings
        if s.name == "gaussian":
            if s.sigma is None or s.kernel is not None:
                raise self.error('gaussian blur needs "sigma" (and no "kernel")', key="sigma")
            _check_min_max(self, s.sigma, "sigma")
        else:
            if s.kernel is None or s.sigma is not None:
                raise self.error('median blur needs "kernel" (and no "sigma")', key="kernel")
            if s.kernel % 2 == 0:
                raise self.error("Kernel for median blur must be odd.", key="kernel")

    def process(self, el, ctx):
        s = self.settings
        img = el.image.get()
        if s.name == "gaussian":
            sigma = float(ctx.rng.uniform(s.sigma.min, s.sigma.max))
            out = cv2.GaussianBlur(img.astype(np.float32), ksize=(0, 0), sigmaX=sigma)
            out = _to_u8(out)
        else:
            out = cv2.medianBlur(np.ascontiguousarray(img), s.kernel)
        yield 0, _with_image(el, out)


class ContrastRange(StrictSettings):
    min: float = Field(ge=0, le=10)
    max: float = Field(ge=0, le=10)
    center_grey: bool = False


class BrightnessRange(StrictSettings):
    min: float = Field(ge=-255, le=255)
    max: float = Field(ge=-255, le=255)


@register_layer
class ContrastBrightnessLayer(Layer):
    """out = (img - g) * c + b + g with c ~ U(contrast), b ~ U(brightness), g = 128 if center_grey else 0."""

    action = "contrast_brightness"

    class Settings(StrictSettings):
        contrast: ContrastRange
        brightness: BrightnessRange

    def validate(self):
        _check_min_max(self, self.settings.contrast, "contrast")
        _check_min_max(self, self.settings.brightness, "brightness")

    def process(self, el, ctx):
        c, b = self.settings.contrast, self.settings.brightness
        contrast = float(ctx.rng.uniform(c.min, c.max))
        brightness = float(ctx.rng.uniform(b.min, b.max))
        grey = 128.0 if c.center_grey else 0.0
        img = el.image.get().astype(np.float32)
        yield 0, _with_image(el, _to_u8((img - grey) * contrast + brightness + grey))


@register_layer
class RandomColorLayer(Layer):
    """Each RGB pixel (row vector) times M = I + N(0, 1)^(3x3) * strength / 5; strength 0..1 (default 0.25)."""

    action = "random_color"

    class Settings(FreeSettings):
        strength: float = Field(default=0.25, ge=0, le=1)

    def process(self, el, ctx):
        s = self.settings.strength / 5.0
        matrix = (np.eye(3) + ctx.rng.standard_normal((3, 3)) * s).astype(np.float32)
        img = el.image.get()
        out = img.reshape(-1, 3).astype(np.float32) @ matrix
        yield 0, _with_image(el, _to_u8(out.reshape(img.shape)))
