import numpy as np
import pytest

from unetkit.metrics import ConfusionMatrix, binary_roc_auc


def test_confusion_matrix_hand_computed():
    target = np.array([[0, 0, 1, 1], [0, 2, 1, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 0, 0, 1]])
    cm = ConfusionMatrix(2, ignore_index=2)
    cm.update(pred, target)
    # class 1: tp=3, fp=1, fn=1 ; class 0: tp=2, fp=1, fn=1 ; 7 counted pixels
    pc = cm.per_class()
    assert pc["iou"][1] == pytest.approx(3 / 5)
    assert pc["dice"][1] == pytest.approx(6 / 8)
    assert pc["precision"][1] == pytest.approx(3 / 4)
    assert pc["recall"][1] == pytest.approx(3 / 4)
    assert pc["specificity"][1] == pytest.approx(2 / 3)
    assert cm.pixel_accuracy() == pytest.approx(5 / 7)


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = rng.random(200).round(1)
    labels = rng.random(200) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        pos.size * neg.size
    )
    assert binary_roc_auc(scores, labels) == pytest.approx(pairwise)
    assert np.isnan(binary_roc_auc(scores, np.zeros(200, bool)))
