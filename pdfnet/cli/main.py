"""The ``pdfnet`` command: one entry point, one module per subcommand.

Each module in :data:`COMMANDS` exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable ``(args) -> int``. Subcommand modules only parse and call library code.
User errors (:class:`pdfnet.errors.UserError`) exit with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pdfnet import __version__
from pdfnet.errors import UserError

#: Subcommand modules under ``pdfnet.cli``, in ``--help`` order.
COMMANDS: tuple[str, ...] = (
    "synth",
    "data",
    "config_cmd",
    "depth",
    "predict",
    "export",
    "eval",
    "bench",
    "report",
    "train",
    "export_weights",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdfnet",
        description="PDFNet: dichotomous image segmentation with depth integrity-prior and patch strategy.",
    )
    parser.add_argument("--version", action="version", version=f"pdfnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        importlib.import_module(f"pdfnet.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"pdfnet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pdfnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
