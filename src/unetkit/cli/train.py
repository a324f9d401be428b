"""`unetkit train`: train a model on a Supervisely project with the UNet V2 JSON config."""

from __future__ import annotations

import argparse
import logging

from unetkit.cli.arguments import add_command, add_progress_arg


def register(subparsers) -> None:
    p = add_command(subparsers, "train", "train a segmentation model on a project (UNet V2 config)", run)
    p.add_argument("--project", required=True, help="Supervisely project folder")
    p.add_argument("--config", help="training config JSON (the original UNet V2 fields + optional 'unetkit')")
    p.add_argument(
        "-o",
        "--out",
        "--output",
        required=True,
        metavar="RUN_DIR",
        help="run folder (checkpoints, logs, charts)",
    )
    p.add_argument("--model", help="registered model name; overrides config unetkit.model (default unet_v2)")
    p.add_argument("--init", metavar="CHECKPOINT", help="initial weights (checkpoint folder or model.pt), "
                   "used as weights_init_type says")  # fmt: skip
    p.add_argument(
        "--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint"
    )
    add_progress_arg(p)


def run(args: argparse.Namespace) -> int:
    """Train on a Supervisely project. Images tagged dataset_tags.train/val form the splits. Checkpoints go to
    RUN_DIR/checkpoints/%08d at each validation; see docs/training.md."""
    from unetkit.errors import ConfigError
    from unetkit.training import train

    if args.config is None and not args.resume:
        raise ConfigError("--config is required (except with --resume)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    train(
        args.project,
        args.config,
        args.out,
        model=args.model,
        init=args.init,
        resume=args.resume,
        progress=not args.no_progress,
    )
    return 0
