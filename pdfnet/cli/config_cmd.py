"""``pdfnet config``: print the resolved config (defaults ⊕ YAML ⊕ --set) as YAML."""

from __future__ import annotations

import argparse
import sys

from pdfnet.cli.common import add_config_args, config_from_args
from pdfnet.config import dump_config, save_config


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Print the resolved config (defaults, then the YAML, then --set) as YAML."
    add_config_args(p)
    p.add_argument("--out", metavar="FILE", help="also write it to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    sys.stdout.write(dump_config(cfg))
    if args.out:
        save_config(cfg, args.out)
    return 0
