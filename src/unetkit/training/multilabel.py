"""Multi-label targets: a pixel's classes packed as the bits of one integer (class k → bit k, neutral → bit K).

A packed map goes through the same nearest-neighbour geometry as a class-index map (crops, flips and scaling fill
with the neutral bit alone), and the losses and metrics unpack it into K×H×W {0, 1} targets plus the mask of
the pixels that count (those without the neutral bit). Objects are drawn independently, so overlaps are kept.
"""

from __future__ import annotations

import torch

NO_CLASS = -1  # the background title of a multi-label map: its objects draw nothing (rasterize_labelsets)


def neutral_flag(num_classes: int) -> int:
    """The packed value of a neutral pixel (also the fill of padding)."""
    return 1 << num_classes


def unpack_targets(target: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed N×H×W → (N×K×H×W float32 {0, 1} targets, N×1×H×W float32 validity: 0 on neutral pixels)."""
    bits = torch.arange(num_classes, device=target.device).view(1, -1, 1, 1)
    t = ((target.unsqueeze(1) >> bits) & 1).float()
    valid = ((target & neutral_flag(num_classes)) == 0).unsqueeze(1).float()
    return t, valid


def pack_predictions(logits: torch.Tensor) -> torch.Tensor:
    """N×K×H×W logits → N×H×W int64 with bit k where class k's probability ≥ 0.5 (logit ≥ 0)."""
    bits = torch.arange(logits.shape[1], device=logits.device).view(1, -1, 1, 1)
    return ((logits >= 0).long() << bits).sum(1)


def class_counts(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """K×3 float64 (true positives, false positives, false negatives) per class at probability 0.5, over the
    non-neutral pixels of a packed target."""
    t, valid = unpack_targets(target, logits.shape[1])
    p = (logits >= 0).float() * valid
    t = t * valid
    dims = (0, 2, 3)
    tp = (p * t).sum(dims)
    return torch.stack([tp, p.sum(dims) - tp, t.sum(dims) - tp], 1).double().cpu()
