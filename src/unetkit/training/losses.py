"""Losses and per-batch metrics of the original plus optional focal / V-Net Dice / class weights.

Original behaviour: docs/original-behaviour.md, "Losses and metrics".

All losses take raw logits N×C×H×W and an int64 target N×H×W whose neutral pixels hold ``ignore_index``;
they run in float32 (call them outside autocast). Multi-label models (one sigmoid channel per class) take the
packed target of :mod:`unetkit.training.multilabel` instead (bit k = class k, bit K = neutral).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from unetkit.errors import ConfigError
from unetkit.training.multilabel import unpack_targets

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DICE_SMOOTH = 1.0  # the original's "+1 inside the ×2" smoothing
HARD_DICE_EPS = 1e-5


def _zero_like_loss(logits: torch.Tensor) -> torch.Tensor:
    return logits.sum() * 0.0  # keeps the graph (DDP needs every parameter to get a gradient)


def _pixel_weights(
    target: torch.Tensor, valid: torch.Tensor, class_weights: torch.Tensor | None
) -> torch.Tensor:
    if class_weights is None:
        return valid.float()
    safe = torch.where(valid, target, torch.zeros_like(target))
    return class_weights.to(target.device)[safe] * valid.float()


def bce_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int,
    w_bce: float = 1.0,
    w_dice: float = 1.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Original binary loss: p = softmax(logits)[:, 1]; Dice per sample 2(Σpt+1)/(Σp+Σt+1) averaged over the
    batch and clamped to [0, 1]; BCE mean over non-neutral pixels; (w_bce·BCE + w_dice·(1−Dice))/(w_bce+w_dice).

    BCE is computed from the logit difference (identical to BCE on the softmax probability, but stable).
    """
    logits = logits.float()
    valid = target != ignore_index
    t = (target == 1).float()
    p = torch.softmax(logits, dim=1)[:, 1]
    vf = valid.float()
    pf = (p * vf).flatten(1)
    tf = (t * vf).flatten(1)
    score = 2.0 * ((pf * tf).sum(1) + DICE_SMOOTH) / (pf.sum(1) + tf.sum(1) + DICE_SMOOTH)
    dice_loss = 1.0 - score.mean().clamp(0.0, 1.0)
    weights = _pixel_weights(target, valid, class_weights)
    if weights.sum() > 0:
        diff = logits[:, 1] - logits[:, 0]
        bce = F.binary_cross_entropy_with_logits(diff, t, reduction="none")
        bce = (bce * weights).sum() / weights.sum()
    else:
        bce = _zero_like_loss(logits)
    return (w_bce * bce + w_dice * dice_loss) / (w_bce + w_dice)


def ce_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Multiclass: NLL of log_softmax (= cross-entropy), mean over non-neutral pixels."""
    if not (target != ignore_index).any():
        return _zero_like_loss(logits)
    weight = None if class_weights is None else class_weights.to(logits.device)
    return F.cross_entropy(logits.float(), target, weight=weight, ignore_index=ignore_index)


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int,
    gamma: float = 2.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax focal loss −(1−p_t)^γ log p_t, (class-)weighted mean over non-neutral pixels."""
    valid = target != ignore_index
    weights = _pixel_weights(target, valid, class_weights)
    if weights.sum() <= 0:
        return _zero_like_loss(logits)
    logp = torch.log_softmax(logits.float(), dim=1)
    safe = torch.where(valid, target, torch.zeros_like(target))
    logp_t = logp.gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = -((1.0 - logp_t.exp()) ** gamma) * logp_t
    return (loss * weights).sum() / weights.sum()


def vnet_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """V-Net soft Dice (squared denominator) per class over the batch, 1 − (weighted) mean over classes."""
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1).float()
    p = torch.softmax(logits.float(), dim=1) * valid
    safe = torch.where(target == ignore_index, torch.zeros_like(target), target)
    t = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).float() * valid
    dims = (0, 2, 3)
    dice = (2.0 * (p * t).sum(dims) + 1e-5) / ((p * p).sum(dims) + (t * t).sum(dims) + 1e-5)
    w = (
        torch.ones(num_classes, device=logits.device)
        if class_weights is None
        else class_weights.to(logits.device)
    )
    return 1.0 - (dice * w).sum() / w.sum()


def multilabel_bce_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    w_bce: float = 1.0,
    w_dice: float = 1.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Multi-label: per class, BCE-with-logits (mean over non-neutral pixels) and soft Dice over the batch
    2(Σpt+1)/(Σp+Σt+1) with p = sigmoid; each averaged over the classes (``class_weights``-weighted);
    (w_bce·BCE + w_dice·(1−Dice))/(w_bce+w_dice). ``target`` is packed (bit k = class k, bit K = neutral)."""
    logits = logits.float()
    t, valid = unpack_targets(target, logits.shape[1])
    n_valid = valid.sum()
    if n_valid <= 0:
        return _zero_like_loss(logits)
    w = (
        torch.ones(logits.shape[1], device=logits.device)
        if class_weights is None
        else class_weights.to(logits.device)
    )
    dims = (0, 2, 3)
    bce = (F.binary_cross_entropy_with_logits(logits, t, reduction="none") * valid).sum(dims) / n_valid
    p = torch.sigmoid(logits) * valid
    tv = t * valid
    dice = (2.0 * (p * tv).sum(dims) + DICE_SMOOTH) / (p.sum(dims) + tv.sum(dims) + DICE_SMOOTH)
    bce, dice_loss = (bce * w).sum() / w.sum(), 1.0 - (dice * w).sum() / w.sum()
    return (w_bce * bce + w_dice * dice_loss) / (w_bce + w_dice)


def build_criterion(
    name: str,
    num_classes: int,
    ignore_index: int,
    *,
    w_bce: float = 1.0,
    w_dice: float = 1.0,
    class_weights: torch.Tensor | None = None,
    focal_gamma: float = 2.0,
    multilabel: bool = False,
) -> tuple[Criterion, str]:
    """Resolve ``auto`` like the original (2 output classes → BCE+Dice, otherwise NLL) → (criterion, name).
    ``multilabel``: per-class BCE + Dice on sigmoid channels (``auto`` or ``bce_dice``)."""
    if multilabel:
        if name not in ("auto", "bce_dice"):
            raise ConfigError(
                f"multi-label training uses per-class BCE + Dice (loss 'auto' or 'bce_dice'), not {name!r}",
                json_path="$.unetkit.loss.name",
            )
        return lambda lg, t: multilabel_bce_dice_loss(
            lg, t, w_bce, w_dice, class_weights
        ), "multilabel_bce_dice"
    if name == "auto":
        name = "bce_dice" if num_classes == 2 else "ce"
    if name == "bce_dice" and num_classes != 2:
        raise ConfigError(
            f"loss 'bce_dice' needs exactly 2 output classes (bg + one), got {num_classes}",
            json_path="$.unetkit.loss.name",
        )
    cw = class_weights
    table: dict[str, Criterion] = {
        "bce_dice": lambda lg, t: bce_dice_loss(lg, t, ignore_index, w_bce, w_dice, cw),
        "ce": lambda lg, t: ce_loss(lg, t, ignore_index, cw),
        "focal": lambda lg, t: focal_loss(lg, t, ignore_index, focal_gamma, cw),
        "vnet_dice": lambda lg, t: vnet_dice_loss(lg, t, ignore_index, cw),
        "ce_vnet_dice": lambda lg, t: (
            (w_bce * ce_loss(lg, t, ignore_index, cw) + w_dice * vnet_dice_loss(lg, t, ignore_index, cw))
            / (w_bce + w_dice)
        ),
    }
    return table[name], name


def class_argmax(logits: torch.Tensor) -> torch.Tensor:
    """argmax over channels (first maximum wins), much faster than ``Tensor.argmax(1)`` on the CPU."""
    if logits.shape[1] == 2:
        return (logits[:, 1] > logits[:, 0]).long()
    return logits.max(1).indices


@torch.no_grad()
def batch_metrics(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, binary: bool, *, multilabel: bool = False
) -> dict:
    """Original per-batch metrics as 0-d tensors: accuracy (neutral excluded) and, when binary, hard dice.
    ``multilabel``: accuracy of the per-class decisions at probability 0.5 (neutral pixels excluded)."""
    if multilabel:
        t, valid = unpack_targets(target, logits.shape[1])
        correct = (((logits >= 0).float() == t).float() * valid).sum()
        return {"accuracy": correct / (valid.sum() * logits.shape[1]).clamp_min(1)}
    pred = class_argmax(logits)
    valid = target != ignore_index
    n_valid = valid.sum()
    correct = ((pred == target) & valid).sum()
    out = {"accuracy": correct.float() / n_valid.clamp_min(1).float()}
    if binary:
        o = ((pred == 1) & valid).flatten(1).float()
        t = ((target == 1) & valid).flatten(1).float()
        out["dice"] = (2.0 * (o * t).sum(1) / (o.sum(1) + t.sum(1) + HARD_DICE_EPS)).mean()
    return out
