"""`unetkit evaluate`: segmentation metrics of a predicted project against a ground-truth project."""

from __future__ import annotations

import argparse

from unetkit.cli.arguments import add_command, options
from unetkit.metrics import METRIC_NAMES

_TITLES = {
    "iou": "IoU",
    "dice": "Dice/F1",
    "precision": "Precision",
    "recall": "Recall",
    "specificity": "Specificity",
    "accuracy": "Accuracy",
}


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "evaluate",
        "IoU, Dice, precision, recall, specificity, accuracy (+ ROC-AUC) of predictions vs ground truth",
        run,
    )
    p.add_argument("--gt", required=True, metavar="DIR", help="ground-truth project")
    p.add_argument("--pred", required=True, metavar="DIR", help="predicted project (output of unetkit infer)")
    p.add_argument("--classes", nargs="+", metavar="CLASS", help="classes to report (default: all, incl. bg)")
    p.add_argument("--background", default="bg", help="background class title")
    p.add_argument("--neutral", default="neutral", help="neutral (ignored) class title")
    p.add_argument("--suffix", default=None, help="suffix of predicted classes (default: detected)")
    p.add_argument(
        "--ignore-neutral",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="leave neutral pixels out of every metric (default: on); --no-ignore-neutral counts them as background",
    )
    p.add_argument(
        "--sweep-threshold",
        action="store_true",
        help="binary tasks with saved probabilities: report the foreground threshold with the best Dice/F1 "
        "(with --multilabel: every class's)",
    )
    p.add_argument(
        "--multilabel",
        action="store_true",
        help="overlapping classes (multi-label models): score each class on its own, background not a class",
    )
    p.add_argument("--json", metavar="FILE", help="also write the full result as JSON")


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.4f}"


def print_report(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for section, title in (("pooled", "pooled over all pixels"), ("per_image", "mean over images")):
        table = Table(title=f"{result['images']} images — {title}")
        table.add_column("class")
        for m in METRIC_NAMES:
            table.add_column(_TITLES[m], justify="right")
        data = result[section]
        for name, values in data["per_class"].items():
            table.add_row(name, *(_fmt(values[m]) for m in METRIC_NAMES))
        table.add_row("[bold]mean[/bold]", *(_fmt(data["mean"][m]) for m in METRIC_NAMES))
        console.print(table)
    auc = result.get("roc_auc")
    if auc:
        console.print(
            f"ROC-AUC ({auc['class']}): pooled {_fmt(auc['pooled'])}, mean over images {_fmt(auc['per_image'])}"
        )
    for title, auc in result.get("roc_auc_per_class", {}).items():
        console.print(
            f"ROC-AUC ({title}): pooled {_fmt(auc['pooled'])}, mean over images {_fmt(auc['per_image'])}"
        )
    for title, sweep in result.get("threshold_sweep_per_class", {}).items():
        if sweep.get("threshold") is not None:
            console.print(
                f"best threshold of {title} by Dice/F1: {sweep['threshold']:.4f} (Dice {_fmt(sweep['dice'])})"
            )
    sweep = result.get("threshold_sweep")
    if sweep and sweep.get("threshold") is not None:
        low, high = sweep["range"]
        console.print(
            f"best threshold by Dice/F1: {sweep['threshold']:.4f} (same Dice from {low:.4f} to {high:.4f}): "
            f"Dice {_fmt(sweep['dice'])}, IoU {_fmt(sweep['iou'])}, precision {_fmt(sweep['precision'])}, "
            f"recall {_fmt(sweep['recall'])}"
        )
    if result.get("neutral_pixels"):
        verb = "left out" if result["ignore_neutral"] else "counted as background"
        console.print(f"neutral pixels {verb}: {result['neutral_pixels']}")
    matched = ", ".join(f"{k} ↔ {v}" for k, v in result.get("matched", {}).items())
    console.print(f"classes matched: {matched}")


def run(args: argparse.Namespace) -> int:
    """Compare the predicted project with the ground truth item by item (same dataset and name). Predicted
    classes are matched by name with or without the suffix (e.g. vessel ↔ vessel_unet). Neutral pixels (e.g.
    outside a field of view) are left out of every metric; pixels covered by no object are background."""
    from unetkit.inference.evaluate import evaluate_projects
    from unetkit.inference.evaluate_multilabel import evaluate_multilabel

    names = ("classes", "background", "neutral", "suffix", "ignore_neutral", "sweep_threshold")
    evaluate = evaluate_multilabel if args.multilabel else evaluate_projects
    result = evaluate(args.gt, args.pred, **options(args, *names))
    print_report(result)
    if args.json:
        from unetkit.atomic import write_json

        write_json(args.json, result)
    return 0
