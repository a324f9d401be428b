"""`unetkit export onnx`: export a checkpoint to ONNX (dynamic batch/height/width, metadata embedded)."""

from __future__ import annotations

import argparse

from unetkit.cli.arguments import add_command, add_model_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint (onnx)",
        description="Export a checkpoint or run folder to another format: unetkit export onnx --help.",
    )
    sub = p.add_subparsers(dest="format", metavar="FORMAT")
    o = add_command(sub, "onnx", "export to ONNX", run_onnx)
    add_model_args(o)
    o.add_argument("-o", "--out", "--output", required=True, metavar="FILE", help="output .onnx file")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset")
    o.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch parity check")
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_onnx(args: argparse.Namespace) -> int:
    """Export a checkpoint to ONNX with dynamic batch, height and width. The class map, normalisation and input
    size are stored in the model's metadata (key 'unetkit')."""
    from pathlib import Path

    from unetkit.errors import UnetkitError
    from unetkit.inference.export import check_parity, export_onnx

    if Path(args.out).is_dir():
        raise UnetkitError(
            "the output is a folder; give a file name such as <folder>/model.onnx", file=args.out
        )
    path = export_onnx(args.model, args.out, opset=args.opset)
    print(f"exported {path}")
    if not args.no_check:
        diff = check_parity(args.model, path)
        print(f"parity: max |logit difference| vs PyTorch = {diff:.2e}")
    return 0
