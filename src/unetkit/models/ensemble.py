"""An ensemble of same-architecture members (e.g. the cross-validation folds of ``unetkit auto``) as one model.

Its output is the log of the members' mean softmax (or the logit of their mean sigmoid for multi-label models),
so that the usual activation of the output gives the averaged probabilities, and the ensemble exports to ONNX
as one graph.
"""

from __future__ import annotations

import torch
from torch import nn

from unetkit.models.registry import create_model, model_stride, register_model

EPS = 1e-7


class Ensemble(nn.Module):
    def __init__(self, members: list[nn.Module], multilabel: bool = False):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.multilabel = multilabel
        self.num_classes = getattr(members[0], "num_classes", None)
        self.in_channels = getattr(members[0], "in_channels", 3)
        heads = getattr(members[0], "head_names", ())
        self.head_names = tuple(f"members.{i}.{h}" for i in range(len(members)) for h in heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for member in self.members:
            out = member(x)
            out = (out[0] if isinstance(out, (tuple, list)) else out).float()
            outs.append(torch.sigmoid(out) if self.multilabel else torch.softmax(out, dim=1))
        mean = torch.stack(outs).mean(dim=0).clamp(EPS, 1 - EPS)
        return torch.log(mean / (1 - mean)) if self.multilabel else torch.log(mean)


def _stride(*, member: str = "unet", member_options: dict | None = None, **_) -> int:
    return model_stride(member, **(member_options or {}))


@register_model(
    "ensemble", stride=_stride, summary="mean probabilities of same-architecture members (auto's folds)"
)
def build_ensemble(
    num_classes: int,
    in_channels: int = 3,
    *,
    member: str = "unet",
    member_options: dict | None = None,
    count: int = 2,
    multilabel: bool = False,
) -> Ensemble:
    members = [create_model(member, num_classes, in_channels, **(member_options or {})) for _ in range(count)]
    return Ensemble(members, multilabel)
