"""FCN-32s / 16s / 8s (Long et al. 2015) on a VGG16-BN backbone.

Class scores from pool5 (fc6/fc7 as convolutions), plus pool4 (16s) and pool3 (8s) scores, fused by summation
with learnable ×2 transposed convolutions initialised to bilinear, then bilinearly upsampled to the input size.
fc6/fc7 take torchvision's ImageNet classifier weights when ``head_channels=4096`` (the paper's recipe).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from unetkit.models.blocks import SegmentationModel, bilinear_kernel, check_positive_int, vgg16_bn_layers
from unetkit.models.registry import register_model

POOL3, POOL4, POOL5 = 23, 33, 43  # VGG16-BN feature indices of the 3rd/4th/5th max-pool


class FCN(SegmentationModel):
    stride = 32
    head_names = ("score_fr.", "score_pool4.", "score_pool3.", "upscore2.", "upscore_pool4.")

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        *,
        variant: str = "8s",
        head_channels: int = 4096,
        dropout: float = 0.5,
        pad_to_stride: bool = False,
    ):
        super().__init__(num_classes, in_channels, pad_to_stride=pad_to_stride)
        check_positive_int("head_channels", head_channels)
        self.variant = variant
        self.features = nn.Sequential(*vgg16_bn_layers(in_channels))
        self.fc6 = nn.Conv2d(512, head_channels, kernel_size=7, padding=3)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout2d(dropout)
        self.fc7 = nn.Conv2d(head_channels, head_channels, kernel_size=1)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout2d(dropout)
        self.score_fr = nn.Conv2d(head_channels, num_classes, kernel_size=1)
        if variant in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(512, num_classes, kernel_size=1)
            self.upscore2 = self._up2(num_classes)
            nn.init.zeros_(self.score_pool4.weight)
            nn.init.zeros_(self.score_pool4.bias)
        if variant == "8s":
            self.score_pool3 = nn.Conv2d(256, num_classes, kernel_size=1)
            self.upscore_pool4 = self._up2(num_classes)
            nn.init.zeros_(self.score_pool3.weight)
            nn.init.zeros_(self.score_pool3.bias)

    @staticmethod
    def _up2(channels: int) -> nn.ConvTranspose2d:
        up = nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=2, padding=1, bias=False)
        up.weight.data.copy_(bilinear_kernel(channels, 4))
        return up

    def vgg_key_map(self) -> dict[str, str]:
        mapping = {f"features.{i}": f"features.{i}" for i, m in enumerate(self.features) if _has_params(m)}
        mapping.update({"classifier.0": "fc6", "classifier.3": "fc7"})
        return mapping

    def forward_features(self, x):
        size = x.shape[-2:]
        pools = {}
        h = x
        for idx, layer in enumerate(self.features):
            h = layer(h)
            if idx in (POOL3, POOL4):
                pools[idx] = h
        h = self.drop6(self.relu6(self.fc6(h)))
        h = self.drop7(self.relu7(self.fc7(h)))
        score = self.score_fr(h)  # 1/32
        if self.variant in ("16s", "8s"):
            score = self.upscore2(score) + self.score_pool4(pools[POOL4])  # 1/16
        if self.variant == "8s":
            score = self.upscore_pool4(score) + self.score_pool3(pools[POOL3])  # 1/8
        return F.interpolate(score, size=size, mode="bilinear", align_corners=False)


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _builder(variant: str):
    def build(
        num_classes: int,
        in_channels: int = 3,
        *,
        head_channels: int = 4096,
        dropout: float = 0.5,
        encoder_weights: str | None = None,
        pad_to_stride: bool = False,
    ) -> FCN:
        model = FCN(
            num_classes, in_channels, variant=variant, head_channels=head_channels, dropout=dropout,
            pad_to_stride=pad_to_stride,
        )  # fmt: skip
        if encoder_weights:
            from unetkit.models.pretrained import load_vgg16_bn_encoder

            load_vgg16_bn_encoder(model, encoder_weights)
        return model

    build.__doc__ = f"FCN-{variant} on VGG16-BN; encoder_weights = None, 'imagenet' or a vgg16_bn file."
    return build


build_fcn32s = register_model("fcn32s", stride=32, summary="FCN-32s: VGG16-BN, scores from pool5")(
    _builder("32s")
)
build_fcn16s = register_model("fcn16s", stride=32, summary="FCN-16s: VGG16-BN, pool5 + pool4 scores")(
    _builder("16s")
)
build_fcn8s = register_model("fcn8s", stride=32, summary="FCN-8s: VGG16-BN, pool5 + pool4 + pool3 scores")(
    _builder("8s")
)
