"""V-Net (Milletari, Navab & Ahmadi 2016), 2-D or 3-D (``spatial_dims``).

Residual stages of 1/2/3/3 convolutions (kernel 5, PReLU) whose input is added to their output, 2×2(×2)
stride-2 convolutions down (doubling channels), 2×2(×2) transposed convolutions up, skips concatenated.
``norm="batch"`` (default) adds BatchNorm after each convolution; ``norm="none"`` is the paper's plain form.
"""

from __future__ import annotations

import torch
from torch import nn

from unetkit.errors import ConfigError
from unetkit.models.blocks import SegmentationModel, channel_pyramid, check_choice, check_positive_int
from unetkit.models.registry import register_model

DOWN_CONVS = (1, 2, 3, 3)  # convolutions in the 2nd..5th encoder stage (the 1st has one)
UP_CONVS = (3, 3, 2, 1)  # convolutions in the decoder stages, deepest first


class _Ops:
    def __init__(self, dims: int, norm: str):
        self.conv = nn.Conv3d if dims == 3 else nn.Conv2d
        self.up = nn.ConvTranspose3d if dims == 3 else nn.ConvTranspose2d
        bn = nn.BatchNorm3d if dims == 3 else nn.BatchNorm2d
        self.norm = bn if norm == "batch" else (lambda ch: nn.Identity())


def _conv_unit(ops: _Ops, in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        ops.conv(in_ch, out_ch, kernel, padding=kernel // 2), ops.norm(out_ch), nn.PReLU(out_ch)
    )


class InputStage(nn.Module):
    """conv(k) to ``out_ch`` plus the input broadcast to ``out_ch`` channels (repeat, or 1×1 conv)."""

    def __init__(self, ops: _Ops, in_ch: int, out_ch: int, kernel: int):
        super().__init__()
        self.conv = nn.Sequential(ops.conv(in_ch, out_ch, kernel, padding=kernel // 2), ops.norm(out_ch))
        self.repeat = out_ch // in_ch if out_ch % in_ch == 0 else 0
        self.project = None if self.repeat else ops.conv(in_ch, out_ch, 1)
        self.act = nn.PReLU(out_ch)

    def forward(self, x):
        res = x.repeat_interleave(self.repeat, dim=1) if self.project is None else self.project(x)
        return self.act(self.conv(x) + res)


class DownStage(nn.Module):
    def __init__(self, ops: _Ops, in_ch: int, n_convs: int, kernel: int):
        super().__init__()
        out_ch = 2 * in_ch
        self.down = nn.Sequential(ops.conv(in_ch, out_ch, 2, stride=2), ops.norm(out_ch), nn.PReLU(out_ch))
        self.convs = nn.Sequential(*[_conv_unit(ops, out_ch, out_ch, kernel) for _ in range(n_convs)])
        self.act = nn.PReLU(out_ch)

    def forward(self, x):
        down = self.down(x)
        return self.act(self.convs(down) + down)


class UpStage(nn.Module):
    def __init__(self, ops: _Ops, in_ch: int, skip_ch: int, out_ch: int, n_convs: int, kernel: int):
        super().__init__()
        self.up = nn.Sequential(ops.up(in_ch, out_ch - skip_ch, 2, stride=2), ops.norm(out_ch - skip_ch))
        self.up_act = nn.PReLU(out_ch - skip_ch)
        self.convs = nn.Sequential(*[_conv_unit(ops, out_ch, out_ch, kernel) for _ in range(n_convs)])
        self.act = nn.PReLU(out_ch)

    def forward(self, x, skip):
        cat = torch.cat([self.up_act(self.up(x)), skip], dim=1)
        return self.act(self.convs(cat) + cat)


@register_model("vnet", stride=16, summary="V-Net (Milletari et al. 2016), 2-D or 3-D")
class VNet(SegmentationModel):
    """V-Net; ``spatial_dims=3`` takes N×C×D×H×W volumes (D, H, W multiples of 16)."""

    stride = 16
    head_names = ("head.",)

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 1,
        *,
        spatial_dims: int = 2,
        base_channels: int = 16,
        kernel_size: int = 5,
        norm: str = "batch",
        pad_to_stride: bool = False,
    ):
        super().__init__(num_classes, in_channels, pad_to_stride=pad_to_stride)
        check_choice("spatial_dims", spatial_dims, (2, 3))
        check_choice("norm", norm, ("batch", "none"))
        check_positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ConfigError(f"option kernel_size={kernel_size} must be odd")
        self.spatial_dims = spatial_dims
        ops = _Ops(spatial_dims, norm)
        ch = channel_pyramid(base_channels, 4)  # 16, 32, 64, 128, 256
        self.input_stage = InputStage(ops, in_channels, ch[0], kernel_size)
        self.down_stages = nn.ModuleList(
            DownStage(ops, ch[i], n, kernel_size) for i, n in enumerate(DOWN_CONVS)
        )
        # decoder output channels: 256, 128, 64, 32 (the up path concatenates the skip to reach them)
        outs = [ch[4], ch[3], ch[2], ch[1]]
        ins = [ch[4], ch[4], ch[3], ch[2]]
        skips = [ch[3], ch[2], ch[1], ch[0]]
        self.up_stages = nn.ModuleList(
            UpStage(ops, i, s, o, n, kernel_size) for i, s, o, n in zip(ins, skips, outs, UP_CONVS)
        )
        self.head = ops.conv(ch[1], num_classes, 1)

    def forward_features(self, x):
        skips = [self.input_stage(x)]
        for stage in self.down_stages:
            skips.append(stage(skips[-1]))
        y = skips.pop()
        for stage in self.up_stages:
            y = stage(y, skips.pop())
        return self.head(y)
