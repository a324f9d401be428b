"""Arguments several commands share, declared once."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable

from unetkit.errors import ConfigError


def add_command(subparsers, name: str, help: str, run: Callable[[argparse.Namespace], int]):
    """A (sub-)command that calls ``run(args)``: ``help`` is its line in the list of commands, the docstring of
    ``run`` the description its own --help shows."""
    parser = subparsers.add_parser(name, help=help, description=inspect.cleandoc(run.__doc__ or "") or None)
    parser.set_defaults(func=run)
    return parser


def add_model_args(parser: argparse.ArgumentParser, *, device_help: str = "") -> None:
    """``--model CHECKPOINT_DIR``; with ``device_help`` also ``--backend`` and ``--device`` (default ``auto``: CUDA
    when available, else the CPU; every command that takes --device has that default)."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="CHECKPOINT_DIR",
        help="checkpoint or run folder (a run folder gives its best checkpoint)",
    )
    if device_help:
        parser.add_argument(
            "--backend",
            choices=("torch", "onnxruntime"),
            default="torch",
            help="run the network with PyTorch or with ONNX Runtime",
        )
        parser.add_argument("--device", default="auto", help=device_help)


def add_progress_arg(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    parser.add_argument("--no-progress", action="store_true", help=help)


def add_engine_args(parser: argparse.ArgumentParser, help: str) -> None:
    """``--engine local|ray`` (``help`` says what each does for this command) and the Ray ``--address``."""
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help=help)
    parser.add_argument(
        "--address",
        default=None,
        metavar="auto|HOST:PORT",
        help="--engine ray: the cluster to join (default: start a local Ray instance)",
    )


def check_engine_args(args: argparse.Namespace) -> None:
    if args.address is not None and args.engine != "ray":
        raise ConfigError("--address needs --engine ray")


def options(args: argparse.Namespace, *names: str) -> dict:
    """``{name: args.name}`` for arguments passed on under their own names."""
    return {name: getattr(args, name) for name in names}


def check_at_least(flag: str, value, low) -> None:
    """ConfigError ``<flag> must be >= <low>, got <value>`` unless ``value >= low``."""
    if value < low:
        raise ConfigError(f"{flag} must be >= {low}, got {value}")
