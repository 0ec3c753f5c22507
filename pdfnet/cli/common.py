"""Helpers shared by subcommands: config arguments and device/dtype parsing."""

from __future__ import annotations

import argparse

import torch

from pdfnet.config import Config, load_config
from pdfnet.errors import UserError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def add_config_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config FILE`` and repeatable ``--set key=value``."""
    p.add_argument("--config", required=required, metavar="FILE", help="experiment YAML (configs/*.yaml)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.batch_size=4 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(args.config, args.overrides)


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda if available else cpu; anything else must be a valid, available device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"invalid device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available")
    return dev


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Map fp32/fp16/bf16 to a torch dtype; half precision on CPU falls back to bf16/fp32 rules."""
    if name not in DTYPES:
        raise UserError(f"invalid dtype {name!r} (use one of {', '.join(DTYPES)})")
    return DTYPES[name]
