"""Evaluations for the studio: the JSON of ``unetkit evaluate --json`` as the studio shows it (pooled metrics,
per-image rows, the confusion matrix), re-thresholding with saved probabilities, and FP/FN overlays.

Every figure comes from :mod:`unetkit.inference.evaluate`; the headline ``dice``/``iou``/... are the means over
the foreground classes (for one foreground class: its own figures).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unetkit.metrics import METRIC_NAMES
from unetkit.project import display_rgb
from unetkit.studio.errors import StudioError
from unetkit.studio.workspace import STATE_DIR, Workspace

EVALUATIONS_DIR = f"{STATE_DIR}/evaluations"
LEGEND = {"tp": "#FFFFFF", "fp": "#FF3B30", "fn": "#00B7FF", "confused": "#FFCC00"}
DIM = 0.35  # the picture's brightness under the overlay


def evaluation_name(out: str) -> str:
    """The evaluation name of an output project (``a/b`` → ``a__b``)."""
    return out.strip("/").replace("/", "__")


def path_of(workspace: Workspace, name: str) -> Path:
    if not name or name.startswith(".") or any(c in name for c in "/\\\x00"):
        raise StudioError(400, "invalid_name", f"evaluation name {name!r}: a plain name (no /, no leading .)")
    return workspace.root / EVALUATIONS_DIR / f"{name}.json"


def read(workspace: Workspace, name: str) -> dict:
    """The saved ``evaluate --json`` result (404 when there is none, 400 when it is not one)."""
    path = path_of(workspace, name)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudioError(404, "not_found", f"no evaluation {name!r}") from None
    except (OSError, ValueError) as exc:
        raise StudioError(400, "invalid_input", f"evaluation {name!r} cannot be read: {exc}") from None
    if not isinstance(result, dict) or not isinstance(result.get("pooled"), dict):
        raise StudioError(
            400, "invalid_input", f"evaluation {name!r} is not the output of unetkit evaluate --json"
        )
    return result


def listing(workspace: Workspace) -> list[dict]:
    """``[{name, gt, pred, images, dice, created}]``, newest first."""
    base = workspace.root / EVALUATIONS_DIR
    out = []
    for path in (
        sorted(base.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if base.is_dir() else []
    ):
        try:
            shown = view(path.stem, read(workspace, path.stem), with_rows=False)
        except StudioError:
            continue
        out.append({"name": path.stem, "gt": shown["gt"], "pred": shown["pred"], "images": shown["images"],
                    "dice": shown["pooled"].get("dice"), "created": path.stat().st_mtime})  # fmt: skip
    return out


def foreground(result: dict) -> list[str]:
    background = result.get("background", "bg")
    return [c for c in result.get("classes", []) if c != background]


def _mean(values: list) -> float | None:
    finite = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def pooled(result: dict) -> dict:
    """Headline metrics (mean over foreground classes), pixel accuracy, ROC-AUC, and every class's figures."""
    per_class = result["pooled"].get("per_class", {})
    fg = [c for c in foreground(result) if c in per_class] or list(per_class)
    out = {m: _mean([per_class[c].get(m) for c in fg]) for m in METRIC_NAMES}
    if result.get("pixel_accuracy") is not None:
        out["pixel_accuracy"] = result["pixel_accuracy"]
    auc = result.get("roc_auc")
    if isinstance(auc, dict) and auc.get("pooled") is not None:
        out["roc_auc"] = auc["pooled"]
    out["per_class"] = per_class
    return out


def rows(result: dict) -> list[dict]:
    """``[{dataset, item, dice, iou, dice_<class>, iou_<class>...}]`` (per class only with several classes)."""
    fg = foreground(result)
    out = []
    for entry in result.get("items", []):
        per_class = entry.get("per_class", {})
        names = [c for c in fg if c in per_class]
        row = {"dataset": entry.get("dataset"), "item": entry.get("item")}
        for m in ("dice", "iou"):
            row[m] = _mean([per_class[c].get(m) for c in names])
        if len(names) > 1:
            for c in names:
                row[f"dice_{c}"] = per_class[c].get("dice")
                row[f"iou_{c}"] = per_class[c].get("iou")
        out.append(row)
    return out


def confusion(result: dict) -> dict | None:
    classes, matrix = result.get("confusion_classes"), result.get("confusion_matrix")
    if not classes or not matrix or len(classes) <= 2:
        return None
    return {"classes": classes, "matrix": matrix}


def view(name: str, result: dict, *, with_rows: bool = True) -> dict:
    """The evaluation as GET /evaluations/{name} answers it."""
    binary = len(result.get("confusion_classes") or []) == 2
    return {
        "name": name,
        "gt": result.get("gt"),
        "pred": result.get("pred"),
        "images": result.get("images"),
        "classes": result.get("classes", []),
        "threshold": result.get("threshold"),
        "pooled": pooled(result),
        "per_image": rows(result) if with_rows else [],
        "confusion": confusion(result),
        "thresholds": binary and isinstance(result.get("roc_auc"), dict),
        "threshold_sweep": result.get("threshold_sweep"),
        "legend": LEGEND,
    }


def project_of(workspace: Workspace, value, what: str) -> Path:
    """The ground-truth or predicted project an evaluation names (relative to the workspace, or inside it)."""
    if not isinstance(value, str) or not value:
        raise StudioError(404, "not_found", f"the evaluation does not name its {what} project")
    path = Path(value)
    if path.is_absolute():
        return workspace.resolve(workspace.rel(path))
    return workspace.resolve(value, kind="dir")


def pairing(workspace: Workspace, result: dict):
    from unetkit.inference.evaluate import ProjectPairing

    gt, pred = (
        project_of(workspace, result.get("gt"), "ground-truth"),
        project_of(workspace, result.get("pred"), "predicted"),
    )
    return ProjectPairing(gt, pred, background=result.get("background", "bg"), neutral=result.get("neutral", "neutral"),
                          suffix=result.get("suffix"), ignore_neutral=result.get("ignore_neutral", True))  # fmt: skip


def rethreshold(workspace: Workspace, name: str, result: dict, threshold: float) -> dict:
    """Pooled and per-image figures with the saved probabilities cut at ``threshold`` (binary tasks)."""
    from unetkit.inference.evaluate import evaluate_projects

    if not view(name, result, with_rows=False)["thresholds"]:
        raise StudioError(409, "no_probabilities", f"evaluation {name!r} has no probability maps: test with "
                          "save_probabilities to re-threshold")  # fmt: skip
    gt, pred = (
        project_of(workspace, result.get("gt"), "ground-truth"),
        project_of(workspace, result.get("pred"), "predicted"),
    )
    again = evaluate_projects(gt, pred, classes=result.get("classes"), background=result.get("background", "bg"),
                              neutral=result.get("neutral", "neutral"), suffix=result.get("suffix"),
                              ignore_neutral=result.get("ignore_neutral", True), threshold=threshold)  # fmt: skip
    again.update(gt=result.get("gt"), pred=result.get("pred"))
    shown = view(name, again)
    return {k: shown[k] for k in ("threshold", "pooled", "per_image", "confusion")}


def errors_picture(
    workspace: Workspace, result: dict, dataset: str, item: str, threshold: float | None = None
):
    """RGB: the image dimmed; true positives white, false positives, false negatives and wrong classes in the
    :data:`LEGEND` colours; neutral (ignored) pixels left dimmed."""
    pair = pairing(workspace, result)
    found = next(((g, p) for g, p in pair.pairs() if g.dataset == dataset and g.name == item), None)
    if found is None:
        raise StudioError(404, "not_found", f"no item {dataset}/{item} in the evaluation")
    gt, pred, _ = pair.masks(*found, threshold)
    image = display_rgb(found[0].read_pixels())
    if image.shape[:2] != gt.shape:
        image = np.zeros(gt.shape + (3,), np.uint8)
    out = (image.astype(np.float32) * DIM).astype(np.uint8)
    valid = gt != pair.neutral_index if pair.neutral_index is not None else np.ones(gt.shape, bool)
    masks = {
        "tp": valid & (gt > 0) & (gt == pred),
        "fp": valid & (gt == 0) & (pred > 0),
        "fn": valid & (gt > 0) & (pred == 0),
        "confused": valid & (gt > 0) & (pred > 0) & (gt != pred),
    }
    for key, mask in masks.items():
        out[mask] = [int(LEGEND[key][i : i + 2], 16) for i in (1, 3, 5)]
    return out
