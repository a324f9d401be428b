"""Shared helpers for the model-zoo tests: small configurations and independent parameter arithmetic."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec"

# Small but structurally complete configurations for the forward/backward/ONNX tests.
SMALL_OPTIONS: dict[str, dict] = {
    "unet_v2": {},  # fixed VGG16-BN topology, no size option
    "unet": {"base_channels": 8},
    "fcn32s": {"head_channels": 32},
    "fcn16s": {"head_channels": 32},
    "fcn8s": {"head_channels": 32},
    "resunet": {"base_channels": 8},
    "inception_unet": {"base_channels": 8},
    "u2net": {},
    "u2netp": {},
    "vnet": {"base_channels": 4},
    "ensemble": {"member": "unet", "member_options": {"base_channels": 4, "depth": 2}, "count": 2},
}


def conv(i: int, o: int, k: int, bias: bool = True, dims: int = 2) -> int:
    return i * o * k**dims + (o if bias else 0)


def bn(c: int) -> int:
    return 2 * c


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_bn_features_params(in_ch: int = 3) -> int:
    total, ch = 0, in_ch
    for v in VGG16:
        if v != "M":
            total += conv(ch, v, 3) + bn(v)
            ch = v
    return total


def read_key_list(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) pairs from a ``*_state_dict_keys.txt`` spec file."""
    path = SPEC / name
    if not path.is_file():  # reference key lists are kept out of the repository, like the real data
        message = f"spec key list not found: {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            key, shape = line.split("\t")
            rows.append((key, tuple(int(v) for v in shape.strip("()").split(",") if v.strip())))
    return rows


def torchvision_vgg16_bn_state(seed: int = 0, with_classifier: bool = False) -> dict[str, torch.Tensor]:
    """A random state dict in torchvision's vgg16_bn key layout (shapes from the spec key list)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in read_key_list("torchvision_vgg16_bn_state_dict_keys.txt"):
        if key.startswith("classifier.") and not with_classifier:
            continue
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen)
    return state
