"""Deep Residual U-Net (Zhang, Liu & Wang 2017, "Road Extraction by Deep Residual U-Net").

Pre-activation residual units (BN → ReLU → conv3×3, twice) with a 1×1 conv + BN shortcut; down-sampling by a
stride-2 first convolution instead of pooling; same padding; ×2 upsampling + concat in the decoder.
"""

from __future__ import annotations

import torch
from torch import nn

from unetkit.models.blocks import SegmentationModel, channel_pyramid
from unetkit.models.registry import register_model


class Shortcut(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))


class ResidualUnit(nn.Module):
    """Pre-activation unit: x → BN-ReLU-conv(stride) → BN-ReLU-conv, plus the projected shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        )
        self.shortcut = Shortcut(in_ch, out_ch, stride)

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class InputUnit(nn.Module):
    """First unit (no pre-activation on the raw image): conv-BN-ReLU-conv plus a 1×1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        )
        self.shortcut = Shortcut(in_ch, out_ch, 1)

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


@register_model(
    "resunet", stride=lambda depth=3, **_: 2**depth, summary="Deep Residual U-Net (Zhang et al. 2017)"
)
class ResUNet(SegmentationModel):
    """ResUNet with ``depth`` stride-2 stages (paper: 64 base channels, depth 3)."""

    head_names = ("head.2.",)

    def __init__(
        self, num_classes: int, in_channels: int = 3, *, base_channels=64, depth=3, pad_to_stride=False
    ):
        super().__init__(num_classes, in_channels, pad_to_stride=pad_to_stride)
        ch = channel_pyramid(base_channels, depth)
        self.stride = 2**depth
        self.input_unit = InputUnit(in_channels, ch[0])
        self.encoders = nn.ModuleList(ResidualUnit(ch[i - 1], ch[i], stride=2) for i in range(1, depth))
        self.bridge = ResidualUnit(ch[depth - 1], ch[depth], stride=2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.decoders = nn.ModuleList(ResidualUnit(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(depth)))
        self.head = nn.Sequential(
            nn.BatchNorm2d(ch[0]), nn.ReLU(inplace=True), nn.Conv2d(ch[0], num_classes, 1)
        )

    def forward_features(self, x):
        skips = [self.input_unit(x)]
        for enc in self.encoders:
            skips.append(enc(skips[-1]))
        y = self.bridge(skips[-1])
        for dec in self.decoders:
            y = dec(torch.cat([self.up(y), skips.pop()], dim=1))
        return self.head(y)
