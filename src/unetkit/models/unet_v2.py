"""Supervisely "UNet V2": VGG16-BN encoder U-Net, topology and state-dict layout identical to the original.

Keys (without the ``module.`` prefix the checkpoint code adds): ``encoder_blocks.{0..4}.<vgg index>.*``,
``blocks.{0..4}.seq{1,2,3}.seq.{0,1}.*`` (``blocks.0`` is built but never used, as in the original),
``ups.{0..3}.conv.*``, ``last_conv.*``, ``bottle.{conv,bn,conv2,bn2}.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from unetkit.models.blocks import SegmentationModel, vgg16_bn_layers
from unetkit.models.registry import register_model

ENCODER_SPLITS = (5, 12, 22, 32, 42)  # last VGG feature index (a ReLU) of each encoder block
ENCODER_CHANNELS = (64, 128, 256, 512, 1024)


class ConvBNAct(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.seq = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.seq(x)


class Block(nn.Module):
    """Three conv3×3-BN-ReLU."""

    def __init__(self, src_channels: int, dst_channels: int):
        super().__init__()
        self.seq1 = ConvBNAct(src_channels, dst_channels)
        self.seq2 = ConvBNAct(dst_channels, dst_channels)
        self.seq3 = ConvBNAct(dst_channels, dst_channels)

    def forward(self, x):
        return self.seq3(self.seq2(self.seq1(x)))


class UNetUp(nn.Module):
    """Nearest ×2 upsampling of the deeper feature, 1×1 conv, then ``cat([skip, up])``."""

    def __init__(self, down_channels: int, right_channels: int):
        super().__init__()
        self.bottom_up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(down_channels, right_channels, kernel_size=1, stride=1)

    def forward(self, left, bottom):
        return torch.cat([left, self.conv(self.bottom_up(bottom))], 1)


class Bottleneck(nn.Module):
    """Two dilated (2) conv3×3 + BN; output = cat(input, relu(result)) (512 → 1024 channels)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, dilation=2, padding=2)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, dilation=2, padding=2)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.bn(self.conv(x))
        out = self.bn2(self.conv2(self.relu(out)))
        return torch.cat((x, self.relu2(out)), dim=1)


def vgg_encoder_blocks(in_channels: int = 3) -> list[nn.Sequential]:
    """VGG16-BN features 0..42 split after 5/12/22/32/42; children keep VGG's index names."""
    layers = vgg16_bn_layers(in_channels)
    blocks, current = [], nn.Sequential()
    for idx, layer in enumerate(layers[: ENCODER_SPLITS[-1] + 1]):
        current.add_module(str(idx), layer)
        if idx in ENCODER_SPLITS:
            blocks.append(current)
            current = nn.Sequential()
    return blocks


class UNetV2(SegmentationModel):
    """The original UNet V2 (stride 16). ``compact=True`` omits the unused ``blocks.0`` (28.3 M params)."""

    stride = 16
    head_names = ("last_conv",)

    def __init__(self, num_classes: int, in_channels: int = 3, *, compact: bool = False, pad_to_stride=False):
        super().__init__(num_classes, in_channels, pad_to_stride=pad_to_stride)
        self.compact = bool(compact)
        channels = ENCODER_CHANNELS
        depth = len(channels)
        self.encoder_blocks = nn.ModuleList(vgg_encoder_blocks(in_channels))
        # blocks[0] is the original's never-used "bottleneck" Block(1024, 1024); kept for key compatibility.
        self.blocks = nn.ModuleList([nn.Identity() if compact else Block(channels[-1], channels[-1])])
        self.ups = nn.ModuleList()
        for i in range(1, depth):
            bottom, left = channels[depth - i], channels[depth - i - 1]
            self.ups.append(UNetUp(bottom, left))
            self.blocks.append(Block(left + left, left))
        self.last_conv = nn.Conv2d(channels[0], num_classes, 1)
        self.bottle = Bottleneck(512, 512)

    def vgg_key_map(self) -> dict[str, str]:
        """torchvision ``features.N`` prefix → this model's prefix, for ImageNet initialisation."""
        mapping = {}
        for b, block in enumerate(self.encoder_blocks):
            for name in block._modules:
                mapping[f"features.{name}"] = f"encoder_blocks.{b}.{name}"
        return mapping

    def forward_features(self, x):
        skips = []
        for block in self.encoder_blocks:
            x = block(x)
            skips.append(x)
        x = self.bottle(skips[-1])
        depth = len(skips)
        for i in range(1, depth):
            x = self.ups[i - 1](skips[depth - i - 1], x)
            x = self.blocks[i](x)
        return self.last_conv(x)


@register_model("unet_v2", stride=16, summary="Supervisely UNet V2: VGG16-BN encoder, exact original layout")
def build_unet_v2(
    num_classes: int,
    in_channels: int = 3,
    *,
    compact: bool = False,
    encoder_weights: str | None = None,
    pad_to_stride: bool = False,
) -> UNetV2:
    """UNet V2; ``encoder_weights`` = None, "imagenet" or a path to torchvision's vgg16_bn state dict."""
    model = UNetV2(num_classes, in_channels, compact=compact, pad_to_stride=pad_to_stride)
    if encoder_weights:
        from unetkit.models.pretrained import load_vgg16_bn_encoder

        load_vgg16_bn_encoder(model, encoder_weights)
    return model
