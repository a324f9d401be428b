"""`unetkit infer`: apply a checkpoint to a project with an inference config.

Original behaviour: docs/original-behaviour.md, "Inference config" to "Project inference".
"""

from __future__ import annotations

import argparse
import sys

from unetkit.cli.arguments import (
    add_command,
    add_engine_args,
    add_model_args,
    add_progress_arg,
    check_at_least,
    check_engine_args,
    options,
)
from unetkit.errors import ConfigError


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "infer",
        "apply a trained model to a project (full_image / roi / bboxes / sliding_window)",
        run,
    )
    add_model_args(p, device_help="torch device (default: cuda:<model.gpu_device> if available, else cpu)")
    p.add_argument("--project", required=True, metavar="DIR", help="input project folder")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="inference config JSON (default: the model card's inference settings; for an original Supervisely "
        "checkpoint full_image, suffix _unet)",
    )
    p.add_argument(
        "-o",
        "--out",
        "--output",
        required=True,
        metavar="DIR",
        help="output project folder (must not exist or be empty)",
    )
    p.add_argument(
        "--onnx", metavar="FILE", help="exported ONNX model for --backend onnxruntime (default: export now)"
    )
    p.add_argument("--workers", type=int, default=2, help="image-reading threads (default 2)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=4,
        help="regions per forward pass (default 4; sliding_window: mode.batch_size)",
    )
    p.add_argument(
        "--amp",
        nargs="?",
        const=True,
        default="auto",
        choices=["auto", "off", "bf16", "fp16", True],
        metavar="MODE",
        help="precision: auto (default: bf16 + channels_last on CPUs with native bf16, AMP on CUDA, else fp32), "
        "off, bf16, fp16; a bare --amp forces mixed precision (float16 on CUDA, bfloat16 on CPU)",
    )
    p.add_argument(
        "--compile",
        default="off",
        choices=["off", "on", "auto"],
        help="torch.compile the model (auto: when a short probe on the first batch shows a gain)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average over horizontal/vertical flips, 4× the compute (default: as the inference settings say)",
    )
    add_engine_args(
        p, "local: this machine; ray: model actors on a Ray cluster, one per GPU (see docs/scale.md)"
    )
    add_progress_arg(p)


def run(args: argparse.Namespace) -> int:
    """Apply a checkpoint to every image of a Supervisely project and write a new project: the input objects are
    kept and the model's classes are added (renamed by mode.model_classes)."""
    from unetkit.inference.batch import infer_project
    from unetkit.inference.predictor import Predictor
    from unetkit.inference_config import InferenceConfig, load_config
    from unetkit.models.checkpoint import read_card

    check_at_least("--workers", args.workers, 1)
    check_at_least("--batch-size", args.batch_size, 1)
    config = load_config(args.config) if args.config else read_card(args.model).inference or InferenceConfig()
    if args.tta is not None:
        config = config.with_mode(tta=args.tta)
    check_engine_args(args)
    engine = _ray_engine(args, config) if args.engine == "ray" else None
    predictor = Predictor.from_checkpoint(
        args.model,
        **options(args, "device", "backend", "amp", "compile"),
        onnx_path=args.onnx,
        gpu_device=config.model.gpu_device,
        settings=config,
    )
    stats = infer_project(
        predictor,
        args.project,
        args.out,
        config,
        workers=args.workers,
        batch_size=args.batch_size,
        progress=not args.no_progress and sys.stderr.isatty(),
        config_file=args.config,
        run=engine,
    )
    where = f"; on Ray: {engine.nodes} node(s), {engine.actors} model actor(s)" if engine else ""
    print(
        f"model applied: {stats.images} images in {stats.seconds:.1f} s ({stats.images_per_second:.2f} img/s; "
        f"model {stats.forward_seconds:.1f} s{where}) -> {args.out}"
    )
    return 0


def _ray_engine(args: argparse.Namespace, config):
    """The Ray engine; this process then reads the checkpoint on the CPU (class map, output meta) only."""
    from unetkit.inference.ray_engine import RayInference

    if args.device is not None:
        raise ConfigError("--device is for --engine local: Ray actors use one GPU each, or the CPU")
    args.device = "cpu"
    model_options = {**options(args, "backend", "amp", "compile"), "onnx_path": args.onnx}
    return RayInference(args.model, config, address=args.address, options=model_options)
