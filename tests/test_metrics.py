import numpy as np
import pytest

from unetkit.metrics import SCORE_BINS, ConfusionMatrix, ScoreHistogram, bin_lower_edges, score_bins


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


def exact_roc_auc(scores, labels) -> float:
    """The rank statistic (Mann-Whitney U / n_pos·n_neg) with ties averaged, from a full sort."""
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels, bool).ravel()
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [scores.size]))
    ranks = np.empty(scores.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    n_pos = labels.sum()
    n_neg = labels.size - n_pos
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def test_exact_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = rng.random(200).round(1)
    labels = rng.random(200) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        pos.size * neg.size
    )
    assert exact_roc_auc(scores, labels) == pytest.approx(pairwise)
    hist = ScoreHistogram()
    hist.update(scores, labels)  # scores on a 0.1 grid: the bins separate them, ties stay ties
    assert hist.roc_auc() == pytest.approx(pairwise, abs=1e-12)
    empty = ScoreHistogram()
    empty.update(scores, np.zeros(200, bool))
    assert np.isnan(empty.roc_auc())


@pytest.mark.parametrize("kind", ["uniform", "saturated", "close"])
def test_histogram_roc_auc_within_1e4_of_exact(kind):
    rng = np.random.default_rng(1)
    n = 300_000
    labels = rng.random(n) < 0.15
    if kind == "uniform":
        scores = rng.random(n)
    elif kind == "saturated":  # softmax outputs: most scores within 1e-4 of 0 or 1, classes overlapping there
        tail = rng.random(n) ** 6 * 1e-4
        flip = rng.random(n) < 0.2
        scores = np.where(labels ^ flip, 1 - tail, tail)
    else:  # everything inside [0.49, 0.51], where the bins are widest
        scores = 0.49 + 0.02 * np.where(labels, rng.beta(3, 2, n), rng.beta(2, 3, n))
    scores = scores.astype(np.float32)
    hist = ScoreHistogram()
    for part in np.array_split(np.arange(n), 3):  # streamed in pieces
        hist.update(scores[part], labels[part])
    assert abs(hist.roc_auc() - exact_roc_auc(scores, labels)) < 1e-4


def test_score_bins_are_monotone_with_exact_edges():
    s = np.sort(np.random.default_rng(2).random(100_000).astype(np.float32))
    s = np.concatenate([[0.0, 1e-30, 0.5, np.nextafter(np.float32(0.5), 1)], s, [1 - 1e-7, 1.0]]).astype(
        np.float32
    )
    s.sort()
    b = score_bins(s)
    assert (np.diff(b) >= 0).all() and b[0] == 0 and b[-1] == SCORE_BINS - 1
    edges = bin_lower_edges()
    assert (np.diff(edges[edges < 0.999]) > 0).all()
    assert (s >= edges[b]).all() and (s[b + 1 < SCORE_BINS] < edges[b[b + 1 < SCORE_BINS] + 1]).all()


def test_best_threshold_constructed():
    hist = ScoreHistogram()
    # negatives up to 0.6, positives from 0.7 → any threshold in (0.6, 0.7] separates them
    hist.update(np.array([0.2, 0.6, 0.7, 0.8, 0.1]), np.array([0, 0, 1, 1, 0], bool))
    best = hist.best_threshold()
    assert best["dice"] == best["iou"] == best["precision"] == best["recall"] == 1.0
    assert 0.6 < best["range"][0] < 0.6001 and 0.6999 < best["range"][1] <= 0.7
    assert best["threshold"] == pytest.approx(0.65, abs=1e-4)
    counts = hist.threshold_counts()
    k = np.searchsorted(counts["threshold"], 0.5)
    assert (counts["tp"][k], counts["fp"][k], counts["fn"][k], counts["tn"][k]) == (2, 1, 0, 2)
    assert ScoreHistogram().best_threshold()["threshold"] is None
