"""What the network is fed, decided from the training images: channel count, pixel type and normalisation.

Rules (docs/training.md, "Inputs"): the channel count is the images' own (8-bit pictures mixing grey, RGB and
RGBA train as RGB, like the original); 8-bit RGB is ÷255 with the ImageNet statistics (the original, and what
ImageNet-initialised encoders expect); every other kind — grey, 16-bit, float, more channels — is normalised
with per-channel mean and standard deviation measured on (up to 64 of) the training images.
"""

from __future__ import annotations

from collections import Counter

from unetkit.errors import ConfigError, FormatError
from unetkit.models.card import Preprocessing
from unetkit.models.preprocess import (
    SCALES,
    channel_statistics,
    conform_channels,
)
from unetkit.project import pixel_info, read_pixels

STATISTICS_IMAGES = 64


def _channels(kinds: Counter) -> int:
    counts = {c for c, _ in kinds}
    if len(counts) == 1:
        return counts.pop()
    if {t for _, t in kinds} == {"uint8"} and counts <= {1, 3, 4}:
        return 3
    raise ConfigError(
        "the training images differ in channel count: "
        + ", ".join(f"{n} image(s) with {c} channel(s) ({t})" for (c, t), n in sorted(kinds.items()))
    )


def _pixel_type(kinds: Counter) -> str:
    types = {t if t in SCALES else "float32" for _, t in kinds}  # other numbers are read as float32
    if len(types) > 1:
        raise ConfigError(f"the training images differ in pixel type: {', '.join(sorted(types))}")
    return types.pop()


def choose_inputs(image_paths: list, input_size: tuple[int, int]) -> tuple[int, Preprocessing]:
    """(in_channels, preprocessing) for a model trained on ``image_paths`` at ``input_size`` (width, height)."""
    if not image_paths:
        raise ConfigError("no training images")
    readable = []  # unreadable images are left to the corrupt-sample policy (allow_corrupted_samples)
    for path in image_paths:
        try:
            readable.append((path, pixel_info(path)))
        except FormatError:
            continue
    if not readable:
        raise ConfigError(f"none of the {len(image_paths)} training images can be read")
    image_paths, infos = [p for p, _ in readable], [i for _, i in readable]
    kinds = Counter((i.channels, i.dtype) for i in infos)
    channels, pixel_type = _channels(kinds), _pixel_type(kinds)
    scale = SCALES[pixel_type]
    if pixel_type == "uint8" and channels == 3:
        return 3, Preprocessing(input_size=input_size)
    step = max(1, len(image_paths) // STATISTICS_IMAGES)
    sample = (conform_channels(read_pixels(p), channels) for p in image_paths[::step][:STATISTICS_IMAGES])
    mean, std = channel_statistics(sample, scale)
    return channels, Preprocessing(
        input_size=input_size, mean=mean, std=std, scale=scale, pixel_type=pixel_type
    )
