import pytest
import torch
import torch.nn.functional as F

from unetkit.errors import ConfigError
from unetkit.training.losses import (
    batch_metrics,
    bce_dice_loss,
    build_criterion,
    ce_loss,
    class_argmax,
    focal_loss,
    vnet_dice_loss,
)

NEUTRAL = 2


def reference_bce_dice(logits, target, neutral, w_bce=1.0, w_dice=1.0):
    """Direct transcription of the original BCEDiceLoss (docs/original-behaviour.md, "Losses and metrics")."""
    p = torch.softmax(logits, 1)[:, 1]
    t = (target == 1).float()
    keep = target != neutral
    scores = []
    for i in range(p.shape[0]):
        pi = p[i].flatten() * keep[i].flatten()
        ti = t[i].flatten() * keep[i].flatten()
        scores.append(2 * ((pi * ti).sum() + 1) / (pi.sum() + ti.sum() + 1))
    dice = torch.stack(scores).mean().clamp(0, 1)
    bce = torch.nn.BCELoss()(p[keep], t[keep])
    return (w_bce * bce + w_dice * (1 - dice)) / (w_bce + w_dice)


def sample(n=3, c=2, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g) * 2
    target = torch.randint(0, c + 1, (n, h, w), generator=g)
    return logits, target


@pytest.mark.parametrize(("wb", "wd"), [(1.0, 1.0), (2.0, 0.5), (0.0, 1.0), (1.0, 0.0)])
def test_bce_dice_matches_the_original_formula(wb, wd):
    logits, target = sample()
    got = bce_dice_loss(logits, target, NEUTRAL, wb, wd)
    assert got.item() == pytest.approx(reference_bce_dice(logits, target, NEUTRAL, wb, wd).item(), rel=1e-5)


def test_neutral_pixels_do_not_matter():
    logits, target = sample()
    target[:, :2] = NEUTRAL
    other = logits.clone()
    other[:, :, :2] = torch.randn_like(other[:, :, :2]) * 10
    for crit in ("bce_dice", "ce", "focal", "vnet_dice", "ce_vnet_dice"):
        fn, _ = build_criterion(crit, 2, NEUTRAL)
        assert fn(logits, target).item() == pytest.approx(fn(other, target).item(), rel=1e-5), crit


def test_ce_is_nll_of_log_softmax_with_ignore_index():
    logits, target = sample(c=4)
    want = F.nll_loss(torch.log_softmax(logits, 1), target, ignore_index=4)
    assert ce_loss(logits, target, 4).item() == pytest.approx(want.item(), rel=1e-6)
    all_neutral = torch.full_like(target, 4)
    assert ce_loss(logits, all_neutral, 4).item() == 0.0


def test_auto_resolves_like_the_original():
    assert build_criterion("auto", 2, 2)[1] == "bce_dice"
    assert build_criterion("auto", 3, 3)[1] == "ce"
    with pytest.raises(ConfigError, match="exactly 2 output classes"):
        build_criterion("bce_dice", 3, 3)


def test_focal_with_gamma_zero_is_ce_and_class_weights_apply():
    logits, target = sample(c=3)
    assert focal_loss(logits, target, 3, gamma=0.0).item() == pytest.approx(
        ce_loss(logits, target, 3).item(), rel=1e-5
    )
    w = torch.tensor([0.1, 1.0, 3.0])
    want = F.cross_entropy(logits, target, weight=w, ignore_index=3)
    assert focal_loss(logits, target, 3, gamma=0.0, class_weights=w).item() == pytest.approx(
        want.item(), rel=1e-5
    )


def test_vnet_dice_perfect_prediction_is_near_zero():
    target = torch.randint(0, 3, (2, 8, 8))
    logits = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert vnet_dice_loss(logits, target, 3).item() == pytest.approx(0.0, abs=1e-4)
    assert vnet_dice_loss(-logits, target, 3).item() > 0.9


def test_batch_metrics_exclude_neutral():
    target = torch.tensor([[[0, 1], [1, 2]]])
    logits = F.one_hot(torch.tensor([[[0, 1], [0, 0]]]), 2).permute(0, 3, 1, 2).float()
    m = batch_metrics(logits, target, NEUTRAL, binary=True)
    assert m["accuracy"].item() == pytest.approx(2 / 3)
    assert m["dice"].item() == pytest.approx(2 * 1 / (1 + 2 + 1e-5))
    assert "dice" not in batch_metrics(logits, target, NEUTRAL, binary=False)


@pytest.mark.parametrize("c", [2, 3, 5])
def test_class_argmax_matches_argmax_including_ties(c):
    logits = torch.randint(0, 3, (2, c, 6, 7)).float()  # many ties
    assert torch.equal(class_argmax(logits), logits.argmax(1))
