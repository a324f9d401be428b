"""Exact parameter counts of the default configurations, from layer arithmetic or the peers' published counts."""

from __future__ import annotations

import pytest
import torch

from unetkit.models import create_model, list_models
from unetkit.models.blocks import count_parameters

from .helpers import bn, conv, vgg16_bn_features_params

C = 2  # classes


def n_params(name: str, classes: int = C, **options) -> int:
    """Count without allocating or initialising weights (meta device)."""
    with torch.device("meta"):
        return count_parameters(create_model(name, classes, **options))


def unet_v2_params(n: int = C, compact: bool = False) -> int:
    def block(i, o):
        return conv(i, o, 3) + bn(o) + 2 * (conv(o, o, 3) + bn(o))

    encoder = vgg16_bn_features_params()
    bottle = 2 * (conv(512, 512, 3) + bn(512))
    blocks = (0 if compact else block(1024, 1024)) + sum(block(2 * c, c) for c in (512, 256, 128, 64))
    ups = sum(conv(i, o, 1) for i, o in ((1024, 512), (512, 256), (256, 128), (128, 64)))
    return encoder + bottle + blocks + ups + conv(64, n, 1)


def fcn_params(variant: str, n: int = C, head: int = 4096) -> int:
    total = vgg16_bn_features_params() + conv(512, head, 7) + conv(head, head, 1) + conv(head, n, 1)
    if variant in ("16s", "8s"):
        total += conv(512, n, 1) + n * n * 16
    if variant == "8s":
        total += conv(256, n, 1) + n * n * 16
    return total


def resunet_params(n: int = C) -> int:
    def unit(i, o):
        return bn(i) + conv(i, o, 3, False) + bn(o) + conv(o, o, 3, False) + conv(i, o, 1, False) + bn(o)

    first = conv(3, 64, 3, False) + bn(64) + conv(64, 64, 3, False) + conv(3, 64, 1, False) + bn(64)
    enc = unit(64, 128) + unit(128, 256) + unit(256, 512)
    dec = unit(512 + 256, 256) + unit(256 + 128, 128) + unit(128 + 64, 64)
    return first + enc + dec + bn(64) + conv(64, n, 1)


def inception_unet_params(n: int = C) -> int:
    def block(i, o):
        b = o // 4
        cbr1 = conv(i, b, 1, False) + bn(b)
        cbr3 = conv(b, b, 3, False) + bn(b)
        return cbr1 + (cbr1 + cbr3) + (cbr1 + 2 * cbr3) + (cbr1 + cbr3) + conv(4 * b, o, 1, False) + bn(o)

    ch = [64 * 2**i for i in range(5)]
    enc = block(3, 64) + sum(block(ch[i - 1], ch[i]) for i in range(1, 5))
    ups = sum(ch[i + 1] * ch[i] * 4 + ch[i] for i in range(4))
    dec = sum(block(2 * ch[i], ch[i]) for i in range(4))
    return enc + ups + dec + conv(64, n, 1)


def vnet_params(n: int = C, dims: int = 2, in_ch: int = 3) -> int:
    def cbp(i, o, k):
        return conv(i, o, k, dims=dims) + bn(o) + o

    proj = 0 if 16 % in_ch == 0 else conv(in_ch, 16, 1, dims=dims)
    total = conv(in_ch, 16, 5, dims=dims) + bn(16) + proj + 16
    for i, convs in zip((16, 32, 64, 128), (1, 2, 3, 3)):
        total += cbp(i, 2 * i, 2) + convs * cbp(2 * i, 2 * i, 5) + 2 * i
    for i, skip, out, convs in ((256, 128, 256, 3), (256, 64, 128, 3), (128, 32, 64, 2), (64, 16, 32, 1)):
        up = out - skip
        total += i * up * 2**dims + up + bn(up) + up + convs * cbp(out, out, 5) + out
    return total + conv(32, n, 1, dims=dims)


EXPECTED = {
    "unet_v2": unet_v2_params(),
    "unet": 31_037_698,  # milesial, transposed conv, 2 classes
    "fcn32s": fcn_params("32s"),
    "fcn16s": fcn_params("16s"),
    "fcn8s": fcn_params("8s"),
    "resunet": resunet_params(),
    "inception_unet": inception_unet_params(),
    "vnet": vnet_params(),
}


def test_every_model_has_an_expected_count():
    assert set(EXPECTED) | {"u2net", "u2netp", "ensemble"} == set(list_models())


def test_an_ensemble_holds_its_members_parameters():
    member = {"base_channels": 8, "depth": 3}
    single = sum(p.numel() for p in create_model("unet", C, **member).parameters())
    ensemble = create_model("ensemble", C, member="unet", member_options=member, count=3)
    assert sum(p.numel() for p in ensemble.parameters()) == 3 * single


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_default_parameter_count(name):
    assert n_params(name, C) == EXPECTED[name]


def test_unet_v2_is_61m_and_compact_drops_the_unused_block():
    assert unet_v2_params() == n_params("unet_v2", 2)
    assert round(unet_v2_params() / 1e6, 1) == 61.0
    unused = unet_v2_params() - unet_v2_params(compact=True)
    assert round(unused / 1e6, 2) == 28.32  # spec: the unused blocks[0] holds ~28.32 M
    assert n_params("unet_v2", 2, compact=True) == unet_v2_params(compact=True)


@pytest.mark.parametrize(
    "name, classes, expected",
    [("u2net", 1, 44_009_869), ("u2netp", 1, 1_131_181), ("unet", 1, 31_037_633)],
)
def test_published_counts(name, classes, expected):
    assert n_params(name, classes) == expected


def test_unet_bilinear_counts():
    assert n_params("unet", 2, upsample="bilinear") == 17_263_042
    assert n_params("unet", 1, upsample="bilinear") == 17_262_977


def test_vnet_3d_count():
    assert n_params("vnet", 2, in_channels=1, spatial_dims=3) == vnet_params(2, 3, 1)


def test_unet_instance_norm_keeps_the_parameters_and_drops_the_running_statistics():
    import torch

    from unetkit.models import create_model

    batch, instance = (
        create_model("unet", 2, base_channels=8, depth=2),
        create_model("unet", 2, base_channels=8, depth=2, norm="instance"),
    )
    assert n_params("unet", 2, norm="instance") == 31_037_698
    assert {k for k, _ in batch.named_parameters()} == {k for k, _ in instance.named_parameters()}
    assert any("running_mean" in k for k in batch.state_dict())
    assert not any("running_mean" in k for k in instance.state_dict())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in instance.modules())
    # each sample is normalised alone: a sample's output does not depend on the rest of the batch
    instance.train()
    x = torch.randn(3, 3, 16, 16)
    torch.testing.assert_close(instance(x)[:1], instance(x[:1]), atol=1e-5, rtol=1e-4)


def test_unet_refuses_an_unknown_norm():
    import pytest

    from unetkit.errors import ConfigError
    from unetkit.models import create_model

    with pytest.raises(ConfigError, match="norm"):
        create_model("unet", 2, norm="group")
