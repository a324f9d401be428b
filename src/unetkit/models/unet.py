"""The original U-Net (Ronneberger et al. 2015) with milesial/Pytorch-UNet's module names.

``padding="same"`` (default) keeps milesial's names (``inc``, ``down1..4``, ``up1..4``, ``outc``) and parameter
counts, so its checkpoints load. ``padding="valid"`` is the paper's unpadded network that crops the skips
(572 → 388); by default it mirrors the input border (the paper's overlap-tile strategy) so the logits have the
input size; ``overlap_tile=False`` returns the raw valid output instead.

``deep_supervision=True`` (nnU-Net's) adds a 1×1 head to every decoder level but the deepest: in train mode the
network returns ``(main, 1/2, 1/4, …)`` logits, the lower ones upsampled to the input size, and
:meth:`UNet.output_weights` weighs their losses 1, ½, ¼, … (normalised to sum 1); in eval mode (inference,
validation, ONNX) it returns the main logits alone, so the heads cost nothing there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetkit.errors import ConfigError
from unetkit.models.blocks import SegmentationModel, center_crop, channel_pyramid, check_choice
from unetkit.models.registry import register_model

NORMS = ("batch", "instance")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """``batch``: BatchNorm2d (milesial's); ``instance``: affine InstanceNorm2d (nnU-Net's), no running stats."""
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.InstanceNorm2d(channels, affine=True)


class DoubleConv(nn.Module):
    """(conv3×3 → norm → ReLU) × 2, convs without bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int | None = None,
        padding: int = 1,
        norm: str = "batch",
    ):
        super().__init__()
        mid = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=padding, bias=False),
            norm_layer(norm, mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=padding, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, padding: int = 1, norm: str = "batch"):
        super().__init__()
        self.maxpool_conv = nn.Sequential(
            nn.MaxPool2d(2), DoubleConv(in_channels, out_channels, padding=padding, norm=norm)
        )

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Upsample the deeper map, match the skip (pad it up for 'same', crop the skip for 'valid'), conv(cat)."""

    def __init__(
        self, in_channels: int, out_channels: int, bilinear: bool, padding: int = 1, norm: str = "batch"
    ):
        super().__init__()
        self.valid = padding == 0
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2, padding=padding, norm=norm)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels, padding=padding, norm=norm)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        if self.valid:
            x2 = center_crop(x2, x1.shape[-2], x1.shape[-1])
        return self.conv(torch.cat([x2, x1], dim=1))


class OutConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


def valid_output_size(size: int, depth: int) -> int | None:
    """Output size of the valid U-Net for an input ``size``, or None when a level gets an odd/empty map."""
    for _ in range(depth):
        size -= 4
        if size <= 0 or size % 2:
            return None
        size //= 2
    size -= 4
    for _ in range(depth):
        size = size * 2 - 4
    return size if size > 0 else None


def valid_margin(depth: int) -> int:
    """Input size minus output size of the valid U-Net (184 for depth 4)."""
    return 4 * (2 ** (depth + 1) - 1) + 4 * (2**depth - 1)


def _stride(padding: str = "same", depth: int = 4, **_) -> int:
    return 2**depth if padding == "same" else 1


@register_model("unet", stride=_stride, summary="Original U-Net (milesial names; same or valid padding)")
class UNet(SegmentationModel):
    """U-Net; the default (same, transpose, 64, 4) has milesial's 31,037,698 params for 2 classes."""

    head_names = ("outc.conv.",)

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        *,
        padding: str = "same",
        upsample: str = "transpose",
        base_channels: int = 64,
        depth: int = 4,
        overlap_tile: bool = True,
        pad_to_stride: bool = False,
        norm: str = "batch",
        deep_supervision: bool = False,
    ):
        super().__init__(num_classes, in_channels, pad_to_stride=pad_to_stride)
        check_choice("padding", padding, ("same", "valid"))
        if not isinstance(deep_supervision, bool):
            raise ConfigError(f"option deep_supervision={deep_supervision!r} must be true or false")
        if deep_supervision and padding != "same":
            raise ConfigError('option deep_supervision=true needs padding="same"')
        check_choice("upsample", upsample, ("transpose", "bilinear"))
        check_choice("norm", norm, NORMS)
        self.padding, self.depth, self.overlap_tile = padding, depth, bool(overlap_tile)
        self.stride = _stride(padding, depth)
        pad = 1 if padding == "same" else 0
        bilinear = upsample == "bilinear"
        factor = 2 if bilinear else 1
        ch = channel_pyramid(base_channels, depth)
        self.inc = DoubleConv(in_channels, ch[0], padding=pad, norm=norm)
        for i in range(1, depth + 1):
            out = ch[i] // factor if i == depth else ch[i]
            setattr(self, f"down{i}", Down(ch[i - 1], out, padding=pad, norm=norm))
        for i in range(1, depth + 1):
            level = depth - i
            out = ch[level] if i == depth else ch[level] // factor
            setattr(self, f"up{i}", Up(ch[level + 1], out, bilinear, padding=pad, norm=norm))
        self.outc = OutConv(ch[0], num_classes)
        # deep supervision: a head on the output of up{depth-1} (1/2 resolution) … up1 (1/2^(depth-1))
        levels = range(1, depth) if deep_supervision else ()
        self.aux_heads = nn.ModuleList(OutConv(ch[level] // factor, num_classes) for level in levels)
        self.deep_supervision = bool(deep_supervision)
        if deep_supervision:  # the aux heads depend on num_classes too: transfer learning re-initialises them
            self.head_names = ("outc.conv.", "aux_heads.")

    def output_weights(self, n: int) -> list[float]:
        """nnU-Net's deep-supervision loss weights for ``n`` outputs: 1, ½, ¼, … normalised to sum 1."""
        weights = [0.5**i for i in range(n)]
        return [w / sum(weights) for w in weights]

    def forward_valid(self, x):
        """The raw network: for 'valid' padding the output is smaller than ``x`` (572 → 388 at depth 4)."""
        skips = [self.inc(x)]
        for i in range(1, self.depth + 1):
            skips.append(getattr(self, f"down{i}")(skips[-1]))
        y = skips.pop()
        decoded = []
        for i in range(1, self.depth + 1):
            y = getattr(self, f"up{i}")(y, skips.pop())
            decoded.append(y)
        main = self.outc(y)
        if not (self.deep_supervision and self.training):
            return main
        size = main.shape[-2:]
        # aux_heads[k] reads the decoder level 2^(k+1) coarser than the output: decoded[-2 - k]
        aux = [
            F.interpolate(head(decoded[-2 - k]), size=size, mode="bilinear", align_corners=False)
            for k, head in enumerate(self.aux_heads)
        ]
        return (main, *aux)

    def forward_features(self, x):
        if self.padding == "same":
            return self.forward_valid(x)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if not self.overlap_tile:
            if valid_output_size(h, self.depth) is None or valid_output_size(w, self.depth) is None:
                raise ConfigError(
                    f"input size {h}x{w} is not a valid size for the unpadded U-Net of depth {self.depth}"
                )
            return self.forward_valid(x)
        margin = valid_margin(self.depth)
        left = margin // 2
        sizes = []
        for s in (h, w):
            total = s + margin
            while valid_output_size(total, self.depth) is None:
                total += 1
            sizes.append(total)
        ph, pw = sizes[0] - h - left, sizes[1] - w - left
        mode = "reflect" if max(left, ph, pw) < min(h, w) else "replicate"
        y = self.forward_valid(F.pad(x, (left, pw, left, ph), mode=mode))
        return y[..., :h, :w]
