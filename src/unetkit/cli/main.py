"""`unetkit` entry point: builds the argparse tree from the command modules and maps errors to exit codes."""

from __future__ import annotations

import argparse
import importlib
import sys

from unetkit import __version__
from unetkit.errors import UnetkitError

# Each module exposes `register(subparsers)`; the parser it adds sets `func=callable(args) -> int | None`.
COMMAND_MODULES = [
    "unetkit.cli.project",
    "unetkit.cli.import_masks",
    "unetkit.cli.dtl",
    "unetkit.cli.train",
    "unetkit.cli.infer",
    "unetkit.cli.evaluate",
    "unetkit.cli.export",
    "unetkit.cli.serve",
    "unetkit.cli.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unetkit", description=__doc__)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
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
