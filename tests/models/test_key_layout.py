"""State-dict key layouts against the spec: UNet V2 (original), milesial U-Net, U²-Net, torchvision vgg16_bn."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unetkit.models import create_model
from unetkit.models.checkpoint import load_state_dict_flexible

from .helpers import read_key_list

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def meta_state(name: str, classes: int, **options) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = create_model(name, classes, **options)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def expected_unet_v2_keys(n_cls: int) -> dict[str, tuple[int, ...]]:
    """The original key layout (docs/original-behaviour.md, "UNet V2 weight layout"), spelled out
    independently of the implementation."""
    keys: dict[str, tuple[int, ...]] = {}

    def conv(prefix, i, o, k):
        keys[f"{prefix}.weight"] = (o, i, k, k)
        keys[f"{prefix}.bias"] = (o,)

    def bn(prefix, c):
        for name in BN_KEYS:
            keys[f"{prefix}.{name}"] = () if name == "num_batches_tracked" else (c,)

    # encoder: torchvision vgg16_bn features 0..42 split after 5/12/22/32/42, VGG index names kept
    vgg = [
        (k, s)
        for k, s in read_key_list("torchvision_vgg16_bn_state_dict_keys.txt")
        if k.startswith("features.")
    ]
    for key, shape in vgg:
        idx = int(key.split(".")[1])
        block = sum(idx > split for split in (5, 12, 22, 32))
        keys[f"encoder_blocks.{block}.{idx}.{key.split('.', 2)[2]}"] = shape
    for b, (i, o) in enumerate([(1024, 1024), (1024, 512), (512, 256), (256, 128), (128, 64)]):
        for s, cin in zip((1, 2, 3), (i, o, o)):
            conv(f"blocks.{b}.seq{s}.seq.0", cin, o, 3)
            bn(f"blocks.{b}.seq{s}.seq.1", o)
    for u, (i, o) in enumerate([(1024, 512), (512, 256), (256, 128), (128, 64)]):
        conv(f"ups.{u}.conv", i, o, 1)
    conv("last_conv", 64, n_cls, 1)
    conv("bottle.conv", 512, 512, 3)
    bn("bottle.bn", 512)
    conv("bottle.conv2", 512, 512, 3)
    bn("bottle.bn2", 512)
    return keys


def test_unet_v2_layout_matches_the_original():
    expected = expected_unet_v2_keys(3)
    assert meta_state("unet_v2", 3) == expected
    compact = meta_state("unet_v2", 3, compact=True)
    assert set(compact) == {k for k in expected if not k.startswith("blocks.0.")}


def test_unet_v2_original_checkpoint_loads_both_ways():
    """A DataParallel-saved original state dict (``module.`` keys, no num_batches_tracked) loads strictly, and
    our weights load strictly into a DataParallel-wrapped model (what the original code does)."""
    torch.manual_seed(0)
    ours = create_model("unet_v2", 2)
    original = {
        "module." + k: torch.randn_like(v.float()) if v.is_floating_point() else v
        for k, v in ours.state_dict().items()
        if not k.endswith("num_batches_tracked")  # pre-0.4.1 PyTorch saves
    }
    load_state_dict_flexible(ours, original, strict=True)
    assert torch.equal(ours.state_dict()["last_conv.weight"], original["module.last_conv.weight"])
    wrapped = nn.DataParallel(create_model("unet_v2", 2))
    load_state_dict_flexible(wrapped, ours.state_dict(), strict=True)
    assert torch.equal(wrapped.module.bottle.conv.weight, ours.bottle.conv.weight)


@pytest.mark.parametrize(
    "options, spec_file",
    [
        ({}, "milesial_unet_transposed_n2_state_dict_keys.txt"),
        ({"upsample": "bilinear"}, "milesial_unet_bilinear_n2_state_dict_keys.txt"),
    ],
)
def test_unet_matches_milesial(options, spec_file):
    assert list(meta_state("unet", 2, **options).items()) == read_key_list(spec_file)


@pytest.mark.parametrize("name", ["u2net", "u2netp"])
def test_u2net_matches_official(name):
    assert list(meta_state(name, 1).items()) == read_key_list(f"{name}_state_dict_keys.txt")


def test_milesial_checkpoint_with_mask_values_loads():
    torch.manual_seed(0)
    src = create_model("unet", 2, upsample="bilinear")
    state = dict(src.state_dict())
    state["mask_values"] = [0, 255]  # milesial's train.py adds this entry
    dst = create_model("unet", 2, upsample="bilinear")
    load_state_dict_flexible(dst, state, strict=True)
    assert torch.equal(dst.outc.conv.weight, src.outc.conv.weight)
