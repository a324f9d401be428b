"""`unetkit demo [--out DIR]`: the built-in end-to-end demo (no downloads)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate a synthetic vessels project, run the tutorial DTL graph, train, infer, evaluate, report",
    )
    p.add_argument(
        "-o", "--out", "--output", default="demo_out", help="output folder (new or empty; default: demo_out)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data, the DTL run and training")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's training epochs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unetkit.demo.pipeline import run_demo

    result = run_demo(args.out, seed=args.seed, epochs=args.epochs, progress=not args.no_progress)
    total = sum(result.seconds.values())
    print(f"Demo finished in {total:.0f} s: held-out vessel Dice {result.dice:.3f}")
    print(f"Report: {result.report.resolve()}")
    return 0
