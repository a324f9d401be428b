"""`unetkit train`: train a model on a Supervisely project with the UNet V2 JSON config."""

from __future__ import annotations

import argparse
import logging

from unetkit.cli.arguments import add_command, add_progress_arg


def register(subparsers) -> None:
    p = add_command(subparsers, "train", "train a segmentation model on a project (UNet V2 config)", run)
    # --config is required except with --resume (which reads the run's own train_config.json): argparse cannot
    # say "required unless", so the usage shows the two forms and run() checks it.
    p.usage = (
        "%(prog)s --project PROJECT --config FILE -o RUN_DIR [--model MODEL] [--init CHECKPOINT] [--no-progress]\n"
        "       %(prog)s --project PROJECT -o RUN_DIR --resume [--config FILE] [--model MODEL] [--no-progress]"
    )
    p.add_argument("--project", required=True, help="Supervisely project folder")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="training config JSON (the original UNet V2 fields + optional 'unetkit'); required, except with "
        "--resume, which continues with the run's own config (a --config given then must match it)",
    )
    p.add_argument(
        "-o",
        "--out",
        "--output",
        required=True,
        metavar="RUN_DIR",
        help="run folder (checkpoints, logs, charts)",
    )
    p.add_argument("--model", help="registered model name; overrides config unetkit.model (default: unet_v2)")
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

    if args.config is None and not args.resume:
        raise ConfigError("--config FILE is required (except with --resume, to continue a run)")
    from unetkit.training import train

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
