"""`unetkit demo [--out DIR]`: the built-in end-to-end demo (no downloads)."""

from __future__ import annotations

import argparse

from unetkit.cli.arguments import add_command, add_progress_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "demo",
        "generate a synthetic vessels project, run the tutorial DTL graph, train, infer, evaluate, report",
        run,
    )
    p.add_argument("-o", "--out", "--output", default="demo_out", help="output folder (new or empty)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data, the DTL run and training")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's training epochs")
    add_progress_arg(p, "no progress bars")


def run(args: argparse.Namespace) -> int:
    """The vessels tutorial end to end on this machine, no downloads: draw a synthetic retina project, run the
    tutorial's DTL graph, train a small U-Net (minutes on a CPU), apply it to held-out images, evaluate,
    and write OUT/report.html. OUT must be new or empty; a failed demo leaves nothing behind."""
    from unetkit.demo.pipeline import run_demo

    result = run_demo(args.out, seed=args.seed, epochs=args.epochs, progress=not args.no_progress)
    total = sum(result.seconds.values())
    print(f"Demo finished in {total:.0f} s: held-out vessel Dice {result.dice:.3f}")
    print(f"Report: {result.report.resolve()}")
    return 0
