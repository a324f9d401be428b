"""Inception-UNet (after Punn & Agarwal 2020): a U-Net whose blocks are inception-like.

Each block runs parallel branches — 1×1, 1×1→3×3, factorised 5×5 (1×1→3×3→3×3) and dilated (1×1→3×3, dilation 2)
— concatenates them and fuses with a 1×1 conv-BN-ReLU. Max-pool down, ×2 transposed-conv up, same padding.
"""

from __future__ import annotations

import torch
from torch import nn

from unetkit.models.blocks import SegmentationModel, channel_pyramid, conv_bn_relu
from unetkit.models.registry import register_model


class InceptionBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        b = max(out_ch // 4, 1)
        self.branch1 = nn.Sequential(*conv_bn_relu(in_ch, b, 1, bias=False))
        self.branch3 = nn.Sequential(
            *conv_bn_relu(in_ch, b, 1, bias=False), *conv_bn_relu(b, b, 3, bias=False)
        )
        self.branch5 = nn.Sequential(
            *conv_bn_relu(in_ch, b, 1, bias=False),
            *conv_bn_relu(b, b, 3, bias=False),
            *conv_bn_relu(b, b, 3, bias=False),
        )
        self.branch_dilated = nn.Sequential(
            *conv_bn_relu(in_ch, b, 1, bias=False), *conv_bn_relu(b, b, 3, dilation=2, bias=False)
        )
        self.fuse = nn.Sequential(*conv_bn_relu(4 * b, out_ch, 1, bias=False))

    def forward(self, x):
        branches = [self.branch1(x), self.branch3(x), self.branch5(x), self.branch_dilated(x)]
        return self.fuse(torch.cat(branches, dim=1))


@register_model(
    "inception_unet",
    stride=lambda depth=4, **_: 2**depth,
    summary="U-Net with inception-like multi-branch blocks",
)
class InceptionUNet(SegmentationModel):
    """Inception-UNet (64 base channels, depth 4 by default)."""

    head_names = ("head.",)

    def __init__(
        self, num_classes: int, in_channels: int = 3, *, base_channels=64, depth=4, pad_to_stride=False
    ):
        super().__init__(num_classes, in_channels, pad_to_stride=pad_to_stride)
        ch = channel_pyramid(base_channels, depth)
        self.stride = 2**depth
        self.encoders = nn.ModuleList(
            InceptionBlock(in_channels if i == 0 else ch[i - 1], ch[i]) for i in range(depth + 1)
        )
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.decoders = nn.ModuleList(InceptionBlock(2 * ch[i], ch[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(ch[0], num_classes, 1)

    def forward_features(self, x):
        skips = []
        for i, enc in enumerate(self.encoders):
            x = enc(x if i == 0 else self.pool(x))
            skips.append(x)
        y = skips.pop()
        for up, dec in zip(self.ups, self.decoders):
            y = dec(torch.cat([skips.pop(), up(y)], dim=1))
        return self.head(y)
