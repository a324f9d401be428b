"""`unetkit` entry point: builds the argparse tree from the command modules and maps errors to exit codes.

Every option's help shows its default; warnings and errors are printed as one line each."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from unetkit import __version__
from unetkit.errors import UnetkitError

# Each module exposes `register(subparsers)`; the parser it adds sets `func=callable(args) -> int | None`.
COMMAND_MODULES = [
    "unetkit.cli.project",
    "unetkit.cli.import_masks",
    "unetkit.cli.dtl",
    "unetkit.cli.train",
    "unetkit.cli.auto",
    "unetkit.cli.infer",
    "unetkit.cli.evaluate",
    "unetkit.cli.export",
    "unetkit.cli.serve",
    "unetkit.cli.demo",
    "unetkit.cli.studio",
]


DESCRIPTION = (
    "unetkit: Supervisely projects, DTL graphs and UNet segmentation on PyTorch. Validate and render projects, "
    "import image/mask folders, transform data with DTL, train, infer, evaluate, export to ONNX and serve models. "
    "Run 'unetkit COMMAND --help' for a command's options."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unetkit", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"unetkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name == name:
                continue
            raise
        module.register(sub)
    _show_defaults(parser)
    return parser


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Append ``(default: X)`` to the help of every option whose help does not mention its default."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _show_defaults(child)
            continue
        flag_only = action.nargs == 0
        if not action.option_strings or flag_only or not action.help or "default" in action.help:
            continue
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            continue  # compared by identity: a default of 0 is shown
        action.help += " (default: empty)" if action.default == "" else " (default: %(default)s)"


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one ``warning: <message>`` line, without the source location and code line."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_parsed(args)


def run_parsed(args: argparse.Namespace) -> int:
    """Run a parsed command: errors → one line and exit code 2, warnings → one line each."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            rc = args.func(args)
    except UnetkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
