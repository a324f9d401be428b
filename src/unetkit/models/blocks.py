"""Building blocks shared by the model zoo: the segmentation base class, stride handling, VGG16-BN layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unetkit.errors import ConfigError

# torchvision's vgg16_bn configuration "D": output channels, "M" = 2×2 max-pool.
VGG16_CFG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


def check_choice(option: str, value: object, allowed: Sequence[object]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(f"option {option}={value!r} is not one of {list(allowed)}")


def check_positive_int(option: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"option {option}={value!r} must be an integer >= {minimum}")
    return value


def channel_pyramid(base_channels: int, depth: int) -> list[int]:
    """``base_channels * 2**i`` for ``i = 0 … depth`` (both checked to be positive integers)."""
    check_positive_int("base_channels", base_channels)
    check_positive_int("depth", depth)
    return [base_channels * 2**i for i in range(depth + 1)]


def _is_tracing() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


class SegmentationModel(nn.Module):
    """Base of every zoo model: checks (or pads) the input size against ``stride`` and crops the output back.

    Subclasses implement ``forward_features(x)`` returning logits (or a tuple of logits) at the size of ``x``.
    ``pad_to_stride=True`` pads the input on the bottom/right (reflect, or replicate for tiny inputs) and crops
    the logits, so any size works; otherwise a size that is not a multiple of ``stride`` is a ConfigError.
    """

    stride: int = 1
    spatial_dims: int = 2
    head_names: tuple[
        str, ...
    ] = ()  # state-dict key substrings of the class-dependent layers (transfer learning)

    def __init__(self, num_classes: int, in_channels: int, *, pad_to_stride: bool = False):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.in_channels = check_positive_int("in_channels", in_channels)
        if not isinstance(pad_to_stride, bool):
            raise ConfigError(f"option pad_to_stride={pad_to_stride!r} must be true or false")
        self.pad_to_stride = pad_to_stride

    def forward_features(self, x: torch.Tensor):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor):
        nd = self.spatial_dims
        if x.dim() != nd + 2:
            raise ConfigError(
                f"{type(self).__name__} expects a {nd + 2}-D input (N, C, {'D, ' if nd == 3 else ''}H, W), "
                f"got shape {tuple(x.shape)}"
            )
        if self.stride == 1:
            return self.forward_features(x)
        s = self.stride
        if not self.pad_to_stride:
            if not _is_tracing():  # no size guards inside torch.compile / ONNX export graphs
                sizes = [int(v) for v in x.shape[2:]]
                if any(v % s for v in sizes):
                    raise ConfigError(
                        f"input size {'x'.join(map(str, sizes))} is not a multiple of the model stride {s}; "
                        f"resize the input or create the model with pad_to_stride=True"
                    )
            return self.forward_features(x)
        sizes = [int(v) for v in x.shape[2:]]
        pads = [(-v) % s for v in sizes]
        if not any(pads):
            return self.forward_features(x)
        flat: list[int] = []
        for pad in reversed(pads):
            flat += [0, pad]
        mode = "reflect" if all(p < size for p, size in zip(pads, sizes)) else "replicate"
        out = self.forward_features(F.pad(x, flat, mode=mode))
        crop = (slice(None), slice(None)) + tuple(slice(0, size) for size in sizes)
        if isinstance(out, tuple):
            return tuple(o[crop] for o in out)
        return out[crop]


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3, *, dilation: int = 1, bias: bool = True) -> list:
    """[Conv2d (same padding), BatchNorm2d, ReLU] as a list, for Sequential bodies."""
    pad = dilation * (kernel // 2)
    return [
        nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=bias),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    ]


def vgg16_bn_layers(in_channels: int = 3) -> list[nn.Module]:
    """The 44 layers of torchvision's ``vgg16_bn().features`` (indices 0..43), built without torchvision."""
    layers: list[nn.Module] = []
    ch = in_channels
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += conv_bn_relu(ch, int(v), 3, bias=True)
            ch = int(v)
    return layers


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Crop the centre ``height × width`` of an N×C×H×W tensor (U-Net 'valid' skip cropping)."""
    top = (x.shape[-2] - height) // 2
    left = (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


def bilinear_kernel(channels: int, kernel: int) -> torch.Tensor:
    """Weights for a per-channel bilinear up-sampling ConvTranspose2d (FCN's initialisation)."""
    factor = (kernel + 1) // 2
    center = factor - 1 if kernel % 2 == 1 else factor - 0.5
    og = torch.arange(kernel, dtype=torch.float32)
    filt1d = 1 - (og - center).abs() / factor
    filt = filt1d[:, None] * filt1d[None, :]
    weight = torch.zeros(channels, channels, kernel, kernel)
    for c in range(channels):
        weight[c, c] = filt
    return weight


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
