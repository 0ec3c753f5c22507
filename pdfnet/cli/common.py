"""Helpers shared by subcommands: config arguments and device/dtype parsing."""

from __future__ import annotations

import argparse

from pdfnet.config import Config, load_config
from pdfnet.utils.device import resolve_device
from pdfnet.utils.precision import DTYPES, resolve_dtype

__all__ = ["DTYPES", "add_config_args", "config_from_args", "resolve_device", "resolve_dtype"]


def add_config_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config FILE`` and repeatable ``--set key=value``."""
    p.add_argument("--config", required=required, metavar="FILE", help="experiment YAML (configs/*.yaml)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.batch_size=4 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)
