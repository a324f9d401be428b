"""`unetkit evaluate`: compare a predicted project with a ground-truth project.

Per class and mean over the reported classes: IoU, Dice/F1, precision, recall (sensitivity), specificity and
accuracy, both **pooled** over all pixels of all images and **per image** (mean over images where defined).
Neutral pixels of the ground truth (outside a field of view) are ignored unless asked otherwise. For binary tasks
the ROC-AUC of the foreground probability map saved by ``save_probabilities`` (``customBigData``) is reported too
(pooled and per image, from score histograms in bounded memory), and on request the threshold with the best Dice.

Class matching: a ground-truth class ``X`` matches the predicted class ``X<suffix>`` (``_unet`` etc.; the suffix
is detected when not given) or ``X`` itself. Pixels not covered by any matched object are background, in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unetkit.errors import ConfigError, FormatError
from unetkit.inference.probabilities import read_probability_map
from unetkit.metrics import METRIC_NAMES, ConfusionMatrix, ScoreHistogram
from unetkit.models.card import ClassMap


@dataclass
class MaskEvaluator:
    """Accumulates pooled and per-image metrics over (gt, pred) index masks; class 0 = background."""

    class_names: list[str]
    ignore_index: int | None = None
    pooled: ConfusionMatrix = field(init=False)
    per_image: list[dict[str, np.ndarray]] = field(default_factory=list)
    image_names: list[str] = field(default_factory=list)
    scores: ScoreHistogram | None = None
    image_aucs: list[float] = field(default_factory=list)

    def __post_init__(self):
        self.pooled = ConfusionMatrix(len(self.class_names), self.ignore_index)

    def add(
        self, gt: np.ndarray, pred: np.ndarray, name: str = "", fg_scores: np.ndarray | None = None
    ) -> None:
        """Add one image. ``fg_scores``: foreground probability map (binary tasks) for ROC-AUC."""
        if gt.shape != pred.shape:
            raise FormatError(
                f"ground truth {gt.shape} and prediction {pred.shape} differ in size", file=name
            )
        cm = ConfusionMatrix(len(self.class_names), self.ignore_index)
        cm.update(pred, gt)
        self.pooled.merge(cm)
        self.per_image.append(cm.per_class())
        self.image_names.append(name)
        if fg_scores is not None:
            keep = gt != self.ignore_index if self.ignore_index is not None else np.ones(gt.shape, bool)
            image = ScoreHistogram()
            image.update(fg_scores[keep], gt[keep] == 1)
            self.image_aucs.append(image.roc_auc())
            if self.scores is None:
                self.scores = image
            else:
                self.scores.merge(image)

    def result(self, report: list[str] | None = None) -> dict:
        """Metrics as a JSON-ready dict (NaN → None)."""
        report = report or list(self.class_names)
        idx = [self.class_names.index(c) for c in report]
        pooled = self.pooled.per_class()
        out: dict = {"classes": report, "images": len(self.per_image)}
        out["pooled"] = _section(pooled, report, idx)
        if self.per_image:
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    per_image = {
                        m: np.nanmean(np.stack([d[m] for d in self.per_image]), axis=0) for m in METRIC_NAMES
                    }
        else:
            per_image = {m: np.full(len(self.class_names), np.nan) for m in METRIC_NAMES}
        out["per_image"] = _section(per_image, report, idx)
        out["pixel_accuracy"] = _num(self.pooled.pixel_accuracy())
        out["confusion_matrix"] = self.pooled.matrix.tolist()
        out["confusion_classes"] = list(self.class_names)
        if self.scores is not None:
            pooled_auc = self.scores.roc_auc()
            finite = [a for a in self.image_aucs if np.isfinite(a)]
            out["roc_auc"] = {
                "class": self.class_names[1],
                "pooled": _num(pooled_auc),
                "per_image": _num(float(np.mean(finite))) if finite else None,
            }
        return out

    def image_metrics(self, index: int, report: list[str]) -> dict:
        """``{class: {metric: value}}`` of image ``index`` (None where undefined)."""
        values = self.per_image[index]
        return {
            c: {m: _num(float(values[m][self.class_names.index(c)])) for m in METRIC_NAMES} for c in report
        }


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _section(values: dict[str, np.ndarray], names: list[str], idx: list[int]) -> dict:
    per_class = {n: {m: _num(float(values[m][i])) for m in METRIC_NAMES} for n, i in zip(names, idx)}
    mean = {}
    for m in METRIC_NAMES:
        finite = [float(values[m][i]) for i in idx if np.isfinite(values[m][i])]
        mean[m] = float(np.mean(finite)) if finite else None
    return {"per_class": per_class, "mean": mean}


def detect_suffix(gt_classes: list[str], pred_classes: list[str]) -> str:
    """The suffix ``s`` such that ``X + s`` is a predicted class for the most ground-truth classes ``X`` ('' if none)."""
    pred = set(pred_classes)
    votes: dict[str, int] = {}
    for x in gt_classes:
        for t in pred:
            if t != x and t.startswith(x):
                votes[t[len(x) :]] = votes.get(t[len(x) :], 0) + 1
    if not votes:
        return ""
    best = max(votes.values())
    winners = sorted(s for s, v in votes.items() if v == best)
    if len(winners) > 1:
        raise ConfigError(
            f"cannot tell the prediction suffix ({', '.join(map(repr, winners))}); pass --suffix"
        )
    return winners[0]


class ProjectPairing:
    """How :func:`evaluate_projects` pairs a ground-truth and a predicted project: the class indices of both
    (background 0, the ground truth's classes as training indexes them, neutral ignored unless asked otherwise),
    the matched predicted titles and the items of the same dataset and name."""

    def __init__(self, gt_dir, pred_dir, *, background="bg", neutral="neutral", suffix=None,
                 ignore_neutral=True):  # fmt: skip
        from unetkit.project import Project

        self.gt_dir, self.pred_dir = gt_dir, pred_dir
        self.gt, self.pred = Project.read(gt_dir), Project.read(pred_dir)
        class_map = ClassMap.for_project(self.gt.meta.classes, background, neutral, file=self.gt.path)
        self.names = sorted(class_map.class_title_to_idx, key=class_map.class_title_to_idx.get)
        gt_titles = self.names[1:]
        self.pred_titles = [c.title for c in self.pred.meta.classes]
        self.suffix = detect_suffix(gt_titles + [background], self.pred_titles) if suffix is None else suffix
        self.neutral_index = class_map.neutral_index
        self.gt_index = {**class_map.class_title_to_idx, neutral: self.neutral_index if ignore_neutral else 0}
        self.pred_index = {self.pred_title(t): i for i, t in enumerate(self.names) if self.pred_title(t)}
        if not any(self.pred_title(t) for t in gt_titles):
            raise ConfigError(
                f"no predicted class matches the ground-truth classes {gt_titles} (suffix {self.suffix!r}); "
                f"predicted classes are {self.pred_titles}"
            )
        self.binary = len(self.names) == 2
        self.fg_pred_title = self.pred_title(self.names[1]) if self.binary else None
        self._pred_items = {(it.dataset, it.name): it for it in self.pred.items()}

    def pred_title(self, x: str) -> str | None:
        for cand in (x + self.suffix, x) if self.suffix else (x,):
            if cand in self.pred_titles:
                return cand
        return None

    def pairs(self):
        """``(gt item, predicted item)`` for every ground-truth item (FormatError when one has no prediction)."""
        for item in self.gt.items():
            pred = self._pred_items.get((item.dataset, item.name))
            if pred is None:
                raise FormatError(f"item {item.dataset}/{item.name} has no prediction", file=self.pred_dir)
            yield item, pred

    def masks(self, gt_item, pred_item, threshold: float | None = None):
        """``(gt, pred, scores)`` index masks of one pair and the foreground probability map (binary tasks with
        saved probabilities, else None). ``threshold``: the prediction is foreground where that map is >= it."""
        from unetkit.project import rasterize

        gt_ann = gt_item.read_annotation(self.gt.meta)
        pred_ann = pred_item.read_annotation(self.pred.meta)
        gt = rasterize(gt_ann, self.gt_index, default=0, skip_unknown=True)
        scores = None
        if self.fg_pred_title is not None:
            scores = read_probability_map(pred_ann.custom_big_data, self.fg_pred_title, pred_ann.height,
                                          pred_ann.width, file=pred_item.ann_path)  # fmt: skip
        if threshold is not None:
            if scores is None:
                raise ConfigError(
                    "a threshold needs a binary model's probability maps: infer with "
                    '"save_probabilities": true in the mode',
                    file=pred_item.ann_path,
                )
            pred = (scores >= threshold).astype(np.int32)
        else:
            pred = rasterize(pred_ann, self.pred_index, default=0, skip_unknown=True)
        if gt.shape != pred.shape:
            raise FormatError(
                f"size {pred.shape[1]}x{pred.shape[0]} differs from the ground truth {gt.shape[1]}x{gt.shape[0]}",
                file=pred_item.ann_path,
            )
        return gt, pred, scores


def evaluate_projects(
    gt_dir: str | Path,
    pred_dir: str | Path,
    *,
    classes: list[str] | None = None,
    background: str = "bg",
    neutral: str = "neutral",
    suffix: str | None = None,
    ignore_neutral: bool = True,
    sweep_threshold: bool = False,
    threshold: float | None = None,
) -> dict:
    """Evaluate every item of ``gt_dir`` against the item of the same dataset and name in ``pred_dir``.

    ``ignore_neutral``: neutral pixels of the ground truth (e.g. outside a field of view) are left out of every
    metric; when False they count as background. ``sweep_threshold`` (binary tasks with saved probabilities):
    also report the foreground threshold with the best pooled Dice/F1. ``threshold`` (the same tasks): score the
    saved probability maps cut at this value instead of the predicted objects. ``items`` holds every image's
    metrics (``{dataset, item, per_class}``); ``gt`` and ``pred`` the two folders as given.
    """
    pairing = ProjectPairing(gt_dir, pred_dir, background=background, neutral=neutral, suffix=suffix,
                             ignore_neutral=ignore_neutral)  # fmt: skip
    names = pairing.names
    report = list(names) if not classes else list(classes)
    for c in report:
        if c not in names:
            raise ConfigError(f"--classes: unknown class {c!r}; known: {', '.join(names)}")
    neutral_index = pairing.neutral_index
    ev = MaskEvaluator(names, ignore_index=neutral_index)
    missing_scores = neutral_pixels = 0
    keys = []
    for item, pred_item in pairing.pairs():
        gt, pred, scores = pairing.masks(item, pred_item, threshold)
        neutral_pixels += int(np.count_nonzero(gt == neutral_index))
        missing_scores += pairing.fg_pred_title is not None and scores is None
        ev.add(gt, pred, f"{item.dataset}/{item.name}", scores if missing_scores == 0 else None)
        keys.append((item.dataset, item.name))
    out = ev.result(report)
    if missing_scores:
        out.pop("roc_auc", None)
    out["ignore_neutral"] = ignore_neutral
    out["neutral_pixels"] = neutral_pixels
    if sweep_threshold:
        if not pairing.binary or missing_scores or ev.scores is None:
            raise ConfigError(
                "--sweep-threshold needs a binary model's probability maps: infer with "
                '"save_probabilities": true in the mode'
            )
        out["threshold_sweep"] = ev.scores.best_threshold("dice")
    out["suffix"] = pairing.suffix
    out["matched"] = {t: p for t in names for p in [pairing.pred_title(t)] if p is not None}
    out.update(
        gt=str(gt_dir), pred=str(pred_dir), background=background, neutral=neutral, threshold=threshold
    )
    out["items"] = [
        {"dataset": ds, "item": name, "per_class": ev.image_metrics(i, report)}
        for i, (ds, name) in enumerate(keys)
    ]
    return out
