"""ImageNet initialisation from torchvision's ``vgg16_bn`` weights (no torchvision needed).

The file is taken from a path, or from the torch hub cache (``<torch hub dir>/checkpoints``), downloading it from
its standard URL when missing. Models with a VGG16-BN encoder expose ``vgg_key_map()``: torchvision module prefix
(``features.N`` / ``classifier.N``) → their own prefix.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from unetkit.errors import UnetkitError

VGG16_BN_URL = "https://download.pytorch.org/models/vgg16_bn-6c64b313.pth"
VGG16_BN_FILE = VGG16_BN_URL.rsplit("/", 1)[1]
VGG16_BN_HASH_PREFIX = "6c64b313"


def hub_weights_path() -> Path:
    """Where torch.hub keeps the vgg16_bn file (``$TORCH_HOME/hub/checkpoints/vgg16_bn-6c64b313.pth``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_BN_FILE


def resolve_vgg16_bn_weights(source: str | Path = "imagenet", *, download: bool = True) -> Path:
    """Path of the vgg16_bn ImageNet state dict: ``source`` itself, or the hub cache (downloaded if needed)."""
    if str(source) != "imagenet":
        path = Path(source)
        if not path.is_file():
            raise UnetkitError("encoder weights file not found", file=path)
        return path
    path = hub_weights_path()
    if path.is_file():
        return path
    hint = (
        f"download {VGG16_BN_URL} and put it at {path} (or pass the file's path as encoder_weights, "
        f"or set TORCH_HOME)"
    )
    if not download:
        raise UnetkitError(f"ImageNet weights for vgg16_bn are not in the cache; {hint}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(
            VGG16_BN_URL, str(path), hash_prefix=VGG16_BN_HASH_PREFIX, progress=False
        )
    except Exception as exc:  # offline, proxy, hash mismatch, read-only cache ...
        path.unlink(missing_ok=True)
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UnetkitError(f"could not download ImageNet weights for vgg16_bn ({reason}); {hint}") from None
    return path


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """RGB conv weights → ``in_channels`` inputs: summed for 1 channel, else cycled and rescaled by 3/in."""
    if weight.shape[1] == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    idx = torch.arange(in_channels) % weight.shape[1]
    return weight[:, idx] * (weight.shape[1] / in_channels)


def linear_to_conv(weight: torch.Tensor, conv_shape: torch.Size) -> torch.Tensor:
    """A fully connected layer's weight reshaped to an equivalent convolution (FCN's fc6/fc7 trick)."""
    if weight.numel() != torch.Size(conv_shape).numel():
        raise UnetkitError(f"cannot reshape a {tuple(weight.shape)} weight to {tuple(conv_shape)}")
    return weight.reshape(conv_shape)


def load_vgg16_bn_encoder(
    model: nn.Module, source: str | Path = "imagenet", state: dict | None = None
) -> list[str]:
    """Copy torchvision vgg16_bn weights into ``model``'s VGG layers; returns the model keys that were set.

    Every VGG layer the model maps must be present with a compatible shape (UnetkitError otherwise).
    ``classifier.*`` weights are used only where the model maps them and the shapes allow (FCN fc6/fc7).
    """
    from unetkit.models.state_dict import load_state_file

    if state is None:
        path = resolve_vgg16_bn_weights(source)
        state = load_state_file(path)
        where = path
    else:
        where = "<state dict>"
    key_map: dict[str, str] = model.vgg_key_map()
    own = model.state_dict()
    in_channels = getattr(model, "in_channels", 3)
    updates: dict[str, torch.Tensor] = {}
    for tv_prefix, own_prefix in key_map.items():
        optional = tv_prefix.startswith("classifier.")
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            target = f"{own_prefix}.{name}"
            if target not in own:
                continue
            src = state.get(f"{tv_prefix}.{name}")
            if src is None:
                if name == "num_batches_tracked" or optional:
                    continue
                raise UnetkitError(f"not a vgg16_bn state dict: {tv_prefix}.{name} is missing", file=where)
            if tv_prefix == "features.0" and name == "weight":
                src = adapt_first_conv(src, in_channels)
            if src.dim() == 2 and own[target].dim() == 4 and src.numel() == own[target].numel():
                src = linear_to_conv(src, own[target].shape)
            if tuple(src.shape) != tuple(own[target].shape):
                if optional:
                    continue
                raise UnetkitError(
                    f"{tv_prefix}.{name} has shape {tuple(src.shape)}, the model needs {tuple(own[target].shape)}",
                    file=where,
                )
            updates[target] = src
    with torch.no_grad():
        for key, value in updates.items():
            own[key].copy_(value)
    return sorted(updates)
