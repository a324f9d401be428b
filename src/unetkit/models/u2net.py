"""U²-Net and U²-NetP (Qin et al. 2020) with the official module names, so official weights load strictly.

Unlike the official code the model returns **logits**: ``(d0, d1, …, d6)`` in train mode (fused first, for deep
supervision) and the fused ``d0`` in eval mode. :func:`official_outputs` gives the official 7 sigmoid maps.
Pools use ``ceil_mode=True`` and upsampling targets the skip's size, so any input size works (stride 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetkit.models.blocks import SegmentationModel
from unetkit.models.registry import register_model


def _upsample_like(src: torch.Tensor, tar: torch.Tensor) -> torch.Tensor:
    return F.interpolate(src, size=tar.shape[2:], mode="bilinear", align_corners=False)


class REBNCONV(nn.Module):
    def __init__(self, in_ch: int = 3, out_ch: int = 3, dirate: int = 1):
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block of height L (RSU7 … RSU4): L-2 pools, dilation 2 at the bottom."""

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int):
        super().__init__()
        self.height = height
        self.rebnconvin = REBNCONV(in_ch, out_ch, 1)
        for i in range(1, height):
            setattr(self, f"rebnconv{i}", REBNCONV(out_ch if i == 1 else mid_ch, mid_ch, 1))
            if i <= height - 2:
                setattr(self, f"pool{i}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
        setattr(self, f"rebnconv{height}", REBNCONV(mid_ch, mid_ch, 2))
        for i in range(height - 1, 0, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(2 * mid_ch, out_ch if i == 1 else mid_ch, 1))

    def forward(self, x):
        hxin = self.rebnconvin(x)
        feats = []
        h = hxin
        for i in range(1, self.height):
            h = getattr(self, f"rebnconv{i}")(h)
            feats.append(h)
            if i <= self.height - 2:
                h = getattr(self, f"pool{i}")(h)
        d = getattr(self, f"rebnconv{self.height}")(h)
        for i in range(self.height - 1, 0, -1):
            skip = feats[i - 1]
            if i < self.height - 1:
                d = _upsample_like(d, skip)
            d = getattr(self, f"rebnconv{i}d")(torch.cat((d, skip), 1))
        return d + hxin


class RSU4F(nn.Module):
    """Dilated residual U-block without pooling (dilations 1, 2, 4, 8)."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int):
        super().__init__()
        self.rebnconvin = REBNCONV(in_ch, out_ch, 1)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, 1)
        self.rebnconv2 = REBNCONV(mid_ch, mid_ch, 2)
        self.rebnconv3 = REBNCONV(mid_ch, mid_ch, 4)
        self.rebnconv4 = REBNCONV(mid_ch, mid_ch, 8)
        self.rebnconv3d = REBNCONV(2 * mid_ch, mid_ch, 4)
        self.rebnconv2d = REBNCONV(2 * mid_ch, mid_ch, 2)
        self.rebnconv1d = REBNCONV(2 * mid_ch, out_ch, 1)

    def forward(self, x):
        hxin = self.rebnconvin(x)
        hx1 = self.rebnconv1(hxin)
        hx2 = self.rebnconv2(hx1)
        hx3 = self.rebnconv3(hx2)
        hx4 = self.rebnconv4(hx3)
        hx3d = self.rebnconv3d(torch.cat((hx4, hx3), 1))
        hx2d = self.rebnconv2d(torch.cat((hx3d, hx2), 1))
        hx1d = self.rebnconv1d(torch.cat((hx2d, hx1), 1))
        return hx1d + hxin


def _block(kind: str, in_ch: int, mid: int, out: int) -> nn.Module:
    return RSU4F(in_ch, mid, out) if kind == "4F" else RSU(int(kind), in_ch, mid, out)


# (stage, block, in, mid, out); "in" None = the model's in_channels
U2NET_CFG = (
    ("stage1", "7", None, 32, 64), ("stage2", "6", 64, 32, 128), ("stage3", "5", 128, 64, 256),
    ("stage4", "4", 256, 128, 512), ("stage5", "4F", 512, 256, 512), ("stage6", "4F", 512, 256, 512),
    ("stage5d", "4F", 1024, 256, 512), ("stage4d", "4", 1024, 128, 256), ("stage3d", "5", 512, 64, 128),
    ("stage2d", "6", 256, 32, 64), ("stage1d", "7", 128, 16, 64),
)  # fmt: skip
# U²-NetP: the same stages, each 16 channels inside and 64 out (a decoder stage "…d" takes two 64s)
U2NETP_CFG = tuple(
    (name, kind, None if cin is None else 128 if name.endswith("d") else 64, 16, 64)
    for name, kind, cin, _, _ in U2NET_CFG
)
U2NET_SIDES = (64, 64, 128, 256, 512, 512)
U2NETP_SIDES = (64,) * 6


class U2Net(SegmentationModel):
    """U²-Net; ``cfg``/``sides`` select the full (44.0 M) or the small "P" (1.13 M) configuration."""

    stride = 1
    head_names = ("side1.", "side2.", "side3.", "side4.", "side5.", "side6.", "outconv.")

    def __init__(self, num_classes: int, in_channels: int, cfg, sides, *, pad_to_stride: bool = False):
        super().__init__(num_classes, in_channels, pad_to_stride=pad_to_stride)
        for i, (name, kind, cin, mid, cout) in enumerate(cfg):
            setattr(self, name, _block(kind, in_channels if cin is None else cin, mid, cout))
            if 1 <= i + 1 <= 5:
                setattr(self, f"pool{i + 1}{i + 2}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
        for i, cin in enumerate(sides, start=1):
            setattr(self, f"side{i}", nn.Conv2d(cin, num_classes, 3, padding=1))
        self.outconv = nn.Conv2d(6 * num_classes, num_classes, 1)

    def forward_all(self, x) -> tuple[torch.Tensor, ...]:
        """Logits ``(d0, d1, …, d6)``: fused first, then the six side outputs, all at the input size."""
        hx1 = self.stage1(x)
        hx2 = self.stage2(self.pool12(hx1))
        hx3 = self.stage3(self.pool23(hx2))
        hx4 = self.stage4(self.pool34(hx3))
        hx5 = self.stage5(self.pool45(hx4))
        hx6 = self.stage6(self.pool56(hx5))
        hx5d = self.stage5d(torch.cat((_upsample_like(hx6, hx5), hx5), 1))
        hx4d = self.stage4d(torch.cat((_upsample_like(hx5d, hx4), hx4), 1))
        hx3d = self.stage3d(torch.cat((_upsample_like(hx4d, hx3), hx3), 1))
        hx2d = self.stage2d(torch.cat((_upsample_like(hx3d, hx2), hx2), 1))
        hx1d = self.stage1d(torch.cat((_upsample_like(hx2d, hx1), hx1), 1))
        d1 = self.side1(hx1d)
        sides = [d1] + [
            _upsample_like(getattr(self, f"side{i}")(h), d1)
            for i, h in zip(range(2, 7), (hx2d, hx3d, hx4d, hx5d, hx6))
        ]
        d0 = self.outconv(torch.cat(sides, 1))
        return (d0, *sides)

    def forward_features(self, x):
        outputs = self.forward_all(x)
        return outputs if self.training else outputs[0]


def official_outputs(model: U2Net, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The official ``forward``: ``(sigmoid(d0), sigmoid(d1), …, sigmoid(d6))`` regardless of train/eval."""
    return tuple(torch.sigmoid(d) for d in model.forward_all(x))


@register_model("u2net", stride=1, summary="U²-Net (official layout, 44.0 M params); deep supervision")
def build_u2net(num_classes: int, in_channels: int = 3, *, pad_to_stride: bool = False) -> U2Net:
    """U²-Net; official weights (1 class) load strictly."""
    return U2Net(num_classes, in_channels, U2NET_CFG, U2NET_SIDES, pad_to_stride=pad_to_stride)


@register_model("u2netp", stride=1, summary="U²-NetP (official layout, 1.13 M params); deep supervision")
def build_u2netp(num_classes: int, in_channels: int = 3, *, pad_to_stride: bool = False) -> U2Net:
    """U²-NetP; official weights (1 class) load strictly."""
    return U2Net(num_classes, in_channels, U2NETP_CFG, U2NETP_SIDES, pad_to_stride=pad_to_stride)
