"""The ``pdfnet`` command: one entry point, one module per subcommand, imported only when it runs.

:data:`COMMANDS` names every subcommand with its module under ``pdfnet.cli``, its one-line help and its
aliases. ``pdfnet --help`` and ``--version`` import none of them; ``pdfnet <command> ...`` imports that
command's module only, so commands that need no tensors (``config``, ``report``, ``score``, ``data check``)
start without torch. A subcommand module exposes ``configure(parser)``, which adds its arguments (and its
``description``) and sets ``func`` to a callable ``(args) -> int``; it only parses and calls library code.
Every failure a user can meet ends as one line on stderr, never a traceback:
:class:`pdfnet.errors.UserError` exits with its ``exit_code`` (2: a bad input or value; 1:
:class:`~pdfnet.errors.FileSystemError`, the work failed), any other ``OSError`` (disk full,
permission denied, read-only file system, a path of the wrong kind …) is turned into a
:class:`~pdfnet.errors.FileSystemError` naming the path and what to do (exit 1), and running out of
host memory is one line too (exit 1).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

from pdfnet import __version__
from pdfnet.errors import UserError, file_system_error


class Command(NamedTuple):
    module: str
    help: str
    aliases: tuple[str, ...] = ()


#: Subcommands in ``--help`` order: name -> (module under ``pdfnet.cli``, help, aliases).
COMMANDS: dict[str, Command] = {
    "synth": Command("synth", "write a synthetic DIS-like dataset (DIS5K layout, depth) for demos/tests"),
    "data": Command("data", "dataset tools (pdfnet data check ROOT)"),
    "config": Command("config_cmd", "print the resolved config as YAML"),
    "depth": Command("depth", "precompute pseudo-depth maps (Depth Anything V2)"),
    "predict": Command("predict", "predict masks/cutouts for images and videos (files, folders, globs)"),
    "export-onnx": Command("export", "export the segmentation network to ONNX", ("export",)),
    "export-weights": Command("export_weights", "export a train checkpoint as release weights "
                              "(model.safetensors + config.yaml)"),
    "eval": Command("eval", "evaluate a checkpoint on DIS splits (--pred-dir/--gt-dir: same as `score`)"),
    "score": Command("score", "score prediction folders against GT folders with the DIS metrics (no model)"),
    "report": Command("report", "tables (md/csv/tex) and curve plots from per-split eval JSONs"),
    "train": Command("train", "train PDFNet (pdfnet train --config FILE [--set k=v] [--resume auto])"),
    "bench": Command("bench", "benchmarks (pdfnet bench metrics|model|train|depth|predict ...)"),
    "app": Command("app", "local web demo of a checkpoint (Gradio; needs the [app] extra)"),
}


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (its canonical name), or None (then only top-level options)."""
    for tok in argv:
        if tok == "--":
            return None
        if not tok.startswith("-"):
            for name, cmd in COMMANDS.items():
                if tok == name or tok in cmd.aliases:
                    return name
            return None  # argparse reports the invalid choice
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported and configured (the others are listed by name)."""
    parser = argparse.ArgumentParser(
        prog="pdfnet",
        description="PDFNet: dichotomous image segmentation with depth integrity-prior and patch strategy.",
    )
    parser.add_argument("--version", action="version", version=f"pdfnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, aliases=list(cmd.aliases), description=cmd.help)
        if name == command:
            importlib.import_module(f"pdfnet.cli.{cmd.module}").configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        return _fail(args.command, e, e.exit_code)
    except OSError as e:
        return _fail(args.command, file_system_error(e), 1)
    except MemoryError:
        return _fail(args.command, "out of memory (use smaller inputs, a smaller --batch-size or fewer "
                                   "workers)", 1)
    except KeyboardInterrupt:
        print(f"pdfnet {args.command}: interrupted", file=sys.stderr)
        return 130


def _fail(command: str, message: object, code: int) -> int:
    print(f"pdfnet {command}: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
