"""`unetkit plan` and `unetkit auto`: self-configuring training within a time budget (docs/auto.md)."""

from __future__ import annotations

import argparse
import json

from unetkit.cli.arguments import add_command, add_progress_arg


def register(subparsers) -> None:
    p = add_command(subparsers, "plan", "fingerprint a project and print / write the auto plan", run_plan)
    p.add_argument("project", metavar="PROJECT", help="training project folder")
    _shared(p)
    p.add_argument(
        "-o", "--out", "--output", metavar="FILE", default="plan.json", help="where to write the plan"
    )
    a = add_command(subparsers, "auto", "plan, train, choose and report within a time budget", run_auto)
    a.add_argument("project", metavar="PROJECT", help="training project folder")
    a.add_argument("-o", "--out", "--output", required=True, metavar="RUN", help="run folder (new or empty)")
    a.add_argument("--plan", metavar="FILE", help="run this plan (from `unetkit plan`, maybe edited) instead")
    a.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in RUN after a kill: finished folds are kept, the current fold continues from its "
        "last checkpoint on the recorded plan, then selection and the report",
    )
    _shared(a)
    add_progress_arg(a)


def _shared(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", default="60m", help="wall-clock budget of the whole run: 15m, 1.5h, 900s")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train")
    p.add_argument("--folds", type=int, default=None, help="cross-validation folds (default: the planner's)")
    p.add_argument("--seed", type=int, default=0, help="seed of folds, sampling and initialisation")


def print_plan(plan) -> None:
    from rich.console import Console
    from rich.table import Table

    fp = plan.fingerprint
    table = Table(title=f"fingerprint: {fp['images']} images")
    table.add_column("measure")
    table.add_column("value")
    table.add_row(
        "size (median w × h)", f"{fp['size']['width']['median']:.0f} × {fp['size']['height']['median']:.0f}"
    )
    table.add_row("channels × pixel type", f"{fp['channels']} × {fp['pixel_type']}")
    for i, stats in enumerate(fp["intensity"]):
        table.add_row(
            f"intensity ch{i} (p0.5 / p50 / p99.5)",
            f"{stats['p0_5']:.3g} / {stats['p50']:.3g} / {stats['p99_5']:.3g}",
        )
    for title, c in fp["classes"].items():
        thick = "-" if c["thickness_px"] is None else f"{c['thickness_px']:.1f} px"
        table.add_row(
            f"class {title}",
            f"{c['pixel_fraction']:.4f} of pixels, in {c['present_in']:.0%} of images, thickness {thick}",
        )
    table.add_row(
        "overlapping classes / neutral fraction",
        f"{fp['overlapping_classes']} / {fp['neutral_fraction']:.4f}",
    )
    table.add_row("train / val tags", f"{fp['tags']['train']} / {fp['tags']['val']}")
    Console().print(table)
    plan_table = Table(title="plan")
    plan_table.add_column("setting")
    plan_table.add_column("value")
    for key, value in plan.model_dump(mode="json").items():
        if key != "fingerprint":
            plan_table.add_row(key, json.dumps(value))
    Console().print(plan_table)


def run_plan(args: argparse.Namespace) -> int:
    """Fingerprint the project (sizes, channels, intensities, classes, structure scale), measure this device's
    speed, derive the plan by the rules of docs/auto.md, print both and write the plan as JSON."""
    from unetkit.auto.planner import plan_project

    plan = plan_project(
        args.project, budget=args.budget, device=args.device, folds=args.folds, seed=args.seed
    )
    print_plan(plan)
    plan.write(args.out)
    print(f"plan written to {args.out}")
    return 0


def run_auto(args: argparse.Namespace) -> int:
    """Plan (unless --plan is given), train the folds, choose threshold / clean-up / TTA on out-of-fold
    predictions, and write RUN/model, RUN/plan.json and RUN/report.html — all within --budget. RUN then works
    wherever a checkpoint does: infer (no --config needed), serve, export onnx, evaluate."""
    from unetkit.auto.run import auto

    result = auto(
        args.project, args.out, budget=args.budget, plan=args.plan, folds=args.folds, seed=args.seed,
        device=args.device, progress=not args.no_progress, resume=args.resume,
    )  # fmt: skip
    c = result.choices
    print(
        f"auto: {result.plan.folds} fold(s), out-of-fold Dice {c.dice:.4f} (threshold {c.threshold}, "
        f"min sizes {c.min_sizes or '-'}, TTA {'on' if c.tta else 'off'}) in {result.seconds / 60:.1f} min "
        f"-> {result.model_dir}; report {result.run_dir / 'report.html'}"
    )
    return 0
