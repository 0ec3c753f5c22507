"""Helpers shared by subcommands: the config arguments (``--config``, ``--set``); torch-free."""

from __future__ import annotations

import argparse

from pdfnet.config import Config, load_config

__all__ = ["add_config_args", "config_from_args"]


def add_config_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config FILE`` and repeatable ``--set key=value``."""
    p.add_argument("--config", required=required, metavar="FILE", help="experiment YAML (configs/*.yaml)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.batch_size=4 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)
