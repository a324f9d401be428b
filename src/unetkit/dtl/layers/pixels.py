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
from unetkit.errors import FormatError
from unetkit.project.images import map_channels

EXAMPLE_SETTINGS: dict[str, dict] = {
    "noise": {"mean": 0, "std": 10},
    "blur": {"name": "gaussian", "sigma": {"min": 0.5, "max": 1.5}},
    "contrast_brightness": {
        "contrast": {"min": 0.8, "max": 1.2, "center_grey": True},
        "brightness": {"min": -20, "max": 20},
    },
    "random_color": {"strength": 0.25},
}


def _integer_pixels(layer: Layer, img: np.ndarray) -> float:
    """The scale of 8-bit units for this image (1 for uint8, 257 for uint16); float images are refused."""
    if img.dtype == np.uint8:
        return 1.0
    if img.dtype == np.uint16:
        return 257.0
    raise FormatError(f'"{layer.action}" works on 8- and 16-bit images, not {img.dtype}')


def _back(img: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float pixels clipped and cast back to the integer type of ``like``."""
    return np.clip(img, 0, np.iinfo(like.dtype).max).astype(like.dtype)


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
        src = el.image.get()
        unit = _integer_pixels(self, src)
        noise = ctx.rng.normal(self.settings.mean, self.settings.std, src.shape).astype(np.float32)
        yield 0, _with_image(el, _back(src.astype(np.float32) + noise * unit, src))


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
        _integer_pixels(self, img)
        if s.name == "gaussian":
            sigma = float(ctx.rng.uniform(s.sigma.min, s.sigma.max))
            blur = map_channels(
                lambda a: cv2.GaussianBlur(a, ksize=(0, 0), sigmaX=sigma), img.astype(np.float32)
            )
            out = _back(blur.reshape(img.shape), img)
        elif img.dtype != np.uint8 and s.kernel > 5:
            raise FormatError(
                f"median blur with kernel {s.kernel} works on 8-bit images only (OpenCV), not {img.dtype}"
            )
        else:
            out = map_channels(lambda a: cv2.medianBlur(np.ascontiguousarray(a), s.kernel), img).reshape(
                img.shape
            )
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
        src = el.image.get()
        unit = _integer_pixels(self, src)
        grey = 128.0 * unit if c.center_grey else 0.0
        img = src.astype(np.float32)
        yield 0, _with_image(el, _back((img - grey) * contrast + brightness * unit + grey, src))


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
        _integer_pixels(self, img)
        if img.shape[2] != 3:
            raise FormatError(
                f'"random_color" mixes the R, G and B channels: it needs 3 channels, not {img.shape[2]}'
            )
        out = img.reshape(-1, 3).astype(np.float32) @ matrix
        yield 0, _with_image(el, _back(out.reshape(img.shape), img))
