"""`unetkit evaluate --multilabel`: overlapping classes, each scored on its own.

A pixel may belong to several classes (a multi-label model's bitmaps overlap, and so may the ground truth's
objects), so there is no single class-index mask to compare. Each ground-truth class ``X`` (every class but
background and neutral) is a binary task: X where an object of X covers the pixel, not X elsewhere, against the
objects of the matched predicted class; neutral pixels are left out of every class (unless ``ignore_neutral`` is
False). The figures are those of :mod:`unetkit.inference.evaluate` for the class X of each task, pooled and per
image, with the ROC-AUC and the best threshold of each class whose probability maps were saved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unetkit.errors import ConfigError, FormatError
from unetkit.inference.evaluate import MaskEvaluator, detect_suffix
from unetkit.inference.probabilities import read_probability_map
from unetkit.metrics import METRIC_NAMES
from unetkit.models.card import ClassMap

IGNORED = 2  # the label of a left-out pixel in each class's binary ground truth


def evaluate_multilabel(
    gt_dir: str | Path,
    pred_dir: str | Path,
    *,
    classes: list[str] | None = None,
    background: str = "bg",
    neutral: str = "neutral",
    suffix: str | None = None,
    ignore_neutral: bool = True,
    sweep_threshold: bool = False,
) -> dict:
    """Per-class metrics of overlapping classes (see the module docstring); ``sweep_threshold`` adds each class's
    threshold with the best pooled Dice/F1 (needs the probability maps of ``save_probabilities``)."""
    from unetkit.project import Project
    from unetkit.project.rasterize import rasterize_labelsets

    gt_project, pred_project = Project.read(gt_dir), Project.read(pred_dir)
    names = list(
        ClassMap.for_project(
            gt_project.meta.classes, background, neutral, multilabel=True, file=gt_project.path
        ).class_title_to_idx
    )
    pred_titles = [c.title for c in pred_project.meta.classes]
    suffix = detect_suffix(names, pred_titles) if suffix is None else suffix
    candidates = {t: (t + suffix, t) if suffix else (t,) for t in names}  # X<suffix>, else X itself
    matched = {
        t: next(p for p in c if p in pred_titles) for t, c in candidates.items() if set(c) & set(pred_titles)
    }
    if not matched:
        raise ConfigError(
            f"no predicted class matches the ground-truth classes {names} (suffix {suffix!r}); "
            f"predicted classes are {pred_titles}"
        )
    report = list(classes) if classes else names
    for c in report:
        if c not in names:
            raise ConfigError(f"--classes: unknown class {c!r}; known: {', '.join(names)}")
    k = len(names)
    gt_bits = {**{t: i for i, t in enumerate(names)}, background: -1, neutral: k if ignore_neutral else -1}
    pred_bits = {p: names.index(t) for t, p in matched.items()}
    evaluators = {t: MaskEvaluator([f"not {t}", t], ignore_index=IGNORED) for t in names}
    missing = dict.fromkeys(names, 0)
    pred_items = {(it.dataset, it.name): it for it in pred_project.items()}
    neutral_pixels = 0
    keys = []
    for item in gt_project.items():
        pred_item = pred_items.get((item.dataset, item.name))
        if pred_item is None:
            raise FormatError(f"item {item.dataset}/{item.name} has no prediction", file=pred_dir)
        gt_ann, pred_ann = item.read_annotation(gt_project.meta), pred_item.read_annotation(pred_project.meta)
        if (gt_ann.height, gt_ann.width) != (pred_ann.height, pred_ann.width):
            raise FormatError(
                f"size {pred_ann.width}x{pred_ann.height} differs from the ground truth {gt_ann.width}x{gt_ann.height}",
                file=pred_item.ann_path,
            )
        keys.append((item.dataset, item.name))
        gt = rasterize_labelsets(gt_ann, gt_bits, skip_unknown=True)
        pred = rasterize_labelsets(pred_ann, pred_bits, skip_unknown=True)
        left_out = ((gt >> k) & 1).astype(bool)
        neutral_pixels += int(left_out.sum())
        for i, title in enumerate(names):
            truth = ((gt >> i) & 1).astype(np.uint8)
            truth[left_out] = IGNORED
            scores = None
            if title in matched:
                scores = read_probability_map(pred_ann.custom_big_data, matched[title], pred_ann.height,
                                              pred_ann.width, file=pred_item.ann_path)  # fmt: skip
            missing[title] += scores is None
            use = scores if missing[title] == 0 else None
            evaluators[title].add(
                truth, ((pred >> i) & 1).astype(np.uint8), f"{item.dataset}/{item.name}", use
            )
    results = {t: evaluators[t].result([t]) for t in names}
    out: dict = {"multilabel": True, "classes": report, "images": len(evaluators[names[0]].per_image)}
    for section in ("pooled", "per_image"):
        per_class = {t: results[t][section]["per_class"][t] for t in report}
        out[section] = {"per_class": per_class, "mean": _mean(per_class)}
    with_scores = [t for t in report if missing[t] == 0 and evaluators[t].scores is not None]
    out["roc_auc_per_class"] = {
        t: {"pooled": results[t]["roc_auc"]["pooled"], "per_image": results[t]["roc_auc"]["per_image"]}
        for t in with_scores
    }
    if sweep_threshold:
        if len(with_scores) < len(report):
            raise ConfigError(
                "--sweep-threshold needs every class's probability maps: infer with "
                '"save_probabilities": true in the mode'
            )
        out["threshold_sweep_per_class"] = {t: evaluators[t].scores.best_threshold("dice") for t in report}
    out.update(ignore_neutral=ignore_neutral, neutral_pixels=neutral_pixels, suffix=suffix, matched=matched)
    out.update(gt=str(gt_dir), pred=str(pred_dir), background=background, neutral=neutral)
    out["items"] = [
        {
            "dataset": ds,
            "item": name,
            "per_class": {t: evaluators[t].image_metrics(i, [t])[t] for t in report},
        }
        for i, (ds, name) in enumerate(keys)
    ]
    return out


def _mean(per_class: dict[str, dict]) -> dict:
    out = {}
    for m in METRIC_NAMES:
        finite = [v[m] for v in per_class.values() if v[m] is not None]
        out[m] = float(np.mean(finite)) if finite else None
    return out
