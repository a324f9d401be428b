"""`unetkit infer`: apply a checkpoint to a project or a folder of images with an inference config.

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
        "apply a trained model to a project (full_image / roi / bboxes / sliding_window) or a folder of images",
        run,
    )
    add_model_args(
        p,
        device_help="torch device: auto (cuda:<model.gpu_device of the inference settings> when CUDA is "
        "available, else cpu), cpu, cuda:0, ...",
    )
    p.add_argument("--project", metavar="DIR", help="input Supervisely project (or --images)")
    p.add_argument(
        "--images",
        metavar="DIR",
        help="input folder of images (or --project): each image file in it (not in subfolders) becomes "
        "OUT/<stem>.png, a class-index mask (see docs/inference.md, 'A folder of images')",
    )
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
        help="output folder (must not exist or be empty): a project for --project, mask files for --images",
    )
    p.add_argument(
        "--save-probabilities",
        action="store_true",
        help="--images: also write OUT/<stem>_probabilities.npy (float16 H×W×classes)",
    )
    p.add_argument(
        "--overlays",
        action="store_true",
        help="--images: also write OUT/<stem>_overlay.png (the image blended with the class colours)",
    )
    p.add_argument(
        "--onnx", metavar="FILE", help="exported ONNX model for --backend onnxruntime (default: export now)"
    )
    p.add_argument("--workers", type=int, default=2, help="image-reading threads (default: 2)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="--project: regions per forward pass (default: 4; sliding_window: mode.batch_size)",
    )
    p.add_argument(
        "--amp",
        nargs="?",
        const=True,
        default="auto",
        choices=["auto", "off", "bf16", "fp16", True],
        metavar="MODE",
        help="precision (default: auto): auto = bf16 + channels_last on CPUs with AMX bf16, AMP on CUDA, "
        "else fp32; off; bf16; fp16; a bare --amp forces mixed precision (float16 on CUDA, bfloat16 on CPU)",
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
        p,
        "local: this machine; ray: model actors on a Ray cluster, one per GPU, --project only (see docs/scale.md)",
    )
    add_progress_arg(p)


def run(args: argparse.Namespace) -> int:
    """Apply a checkpoint or run folder with its inference settings (or --config). --project DIR: every image of a
    Supervisely project, written as a new project where the input objects are kept and the model's classes are
    added (renamed by mode.model_classes). --images DIR: every image file of a folder becomes OUT/<stem>.png, a
    class-index mask (--save-probabilities, --overlays: more files per image)."""
    from unetkit.inference.predictor import Predictor
    from unetkit.inference_config import InferenceConfig, load_config
    from unetkit.models.checkpoint import read_card

    _check_inputs(args)
    check_at_least("--workers", args.workers, 1)
    if args.batch_size is not None:
        check_at_least("--batch-size", args.batch_size, 1)
    check_engine_args(args)
    config = load_config(args.config) if args.config else read_card(args.model).inference or InferenceConfig()
    if args.tta is not None:
        config = config.with_mode(tta=args.tta)
    if args.images is not None:
        from unetkit.inference.folder import check_mode

        check_mode(config, args.config)
    engine = _ray_engine(args, config) if args.engine == "ray" else None
    predictor = Predictor.from_checkpoint(
        args.model,
        **options(args, "device", "backend", "amp", "compile"),
        onnx_path=args.onnx,
        gpu_device=config.model.gpu_device,
        settings=config,
    )
    progress = not args.no_progress and sys.stderr.isatty()
    if args.images is not None:
        return _run_folder(args, predictor, config, progress)
    from unetkit.inference.batch import infer_project

    stats = infer_project(
        predictor,
        args.project,
        args.out,
        config,
        workers=args.workers,
        batch_size=4 if args.batch_size is None else args.batch_size,
        progress=progress,
        config_file=args.config,
        run=engine,
    )
    where = f"; on Ray: {engine.nodes} node(s), {engine.actors} model actor(s)" if engine else ""
    print(
        f"model applied: {stats.images} images in {stats.seconds:.1f} s ({stats.images_per_second:.2f} img/s; "
        f"model {stats.forward_seconds:.1f} s{where}) -> {args.out}"
    )
    return 0


def _check_inputs(args: argparse.Namespace) -> None:
    """Exactly one of --project / --images, and the options of the other kind of input left out."""
    if (args.project is None) == (args.images is None):
        given = "both" if args.project is not None else "neither"
        raise ConfigError(
            f"give exactly one of --project DIR (a Supervisely project) or --images DIR (a folder of images); "
            f"got {given}"
        )
    if args.images is not None:
        if args.engine == "ray":
            raise ConfigError("--engine ray is for --project; --images runs on this machine (--engine local)")
        if args.batch_size is not None:
            raise ConfigError(
                "--batch-size is for --project; with --images each image is predicted on its own "
                "(sliding_window: mode.batch_size windows per forward pass)"
            )
    else:
        for flag, given in (("--save-probabilities", args.save_probabilities), ("--overlays", args.overlays)):
            if given:
                raise ConfigError(
                    f"{flag} is for --images; with --project use the config's mode.save_probabilities, and "
                    "'unetkit project render' for overlays"
                )


def _run_folder(args: argparse.Namespace, predictor, config, progress: bool) -> int:
    from unetkit.inference.folder import infer_folder

    stats = infer_folder(
        predictor,
        args.images,
        args.out,
        config,
        probabilities=args.save_probabilities,
        overlays=args.overlays,
        workers=args.workers,
        progress=progress,
        config_file=args.config,
    )
    skipped = f"; {stats.skipped} other file(s) left out" if stats.skipped else ""
    print(
        f"model applied: {stats.images} images in {stats.seconds:.1f} s ({stats.images_per_second:.2f} img/s; "
        f"model {stats.forward_seconds:.1f} s{skipped}) -> {args.out}"
    )
    return 0


def _ray_engine(args: argparse.Namespace, config):
    """The Ray engine; this process then reads the checkpoint on the CPU (class map, output meta) only."""
    from unetkit.inference.ray_engine import RayInference

    if args.device != "auto":
        raise ConfigError("--device is for --engine local: Ray actors use one GPU each, or the CPU")
    args.device = "cpu"
    model_options = {**options(args, "backend", "amp", "compile"), "onnx_path": args.onnx}
    return RayInference(args.model, config, address=args.address, options=model_options)
