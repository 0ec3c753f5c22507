"""``pdfnet train``: train PDFNet from a config (single process, or one process per GPU under torchrun)."""

from __future__ import annotations

import argparse
import sys

from pdfnet.cli.common import add_config_args, config_from_args
from pdfnet.engine import distributed as D
from pdfnet.engine.trainer import TrainingInterrupted, train
from pdfnet.errors import UserError


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Train PDFNet. Multi-GPU / multi-node: torchrun --nproc_per_node=N -m pdfnet.cli.main "
                     "train --config FILE (DDP; train.batch_size is per process).")
    add_config_args(p, required=True)
    p.add_argument("--resume", metavar="auto|PATH",
                   help="'auto': continue from <train.output_dir>/last.pt if present; or a train-state path")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a train.output_dir that holds a run, moving its files into "
                        "<train.output_dir>/previous-<time>/ (nothing is deleted)")
    p.add_argument("--init", metavar="WEIGHTS",
                   help="fine-tune from these weights (train.init): the official .pth, a model.safetensors "
                        "release or a train state's weights; a new run, so not with --resume")
    p.add_argument("--init-strict", action=argparse.BooleanOptionalAction, default=None,
                   help="train.init_strict: every key must match (default); --no-init-strict loads the keys "
                        "matching by name and shape and reports the rest")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.init is not None:
        if args.resume:
            raise UserError("--init starts a new run from given weights, --resume continues a run: use one")
        cfg.train.init = args.init
    if args.init_strict is not None:
        cfg.train.init_strict = args.init_strict
    try:
        res = train(cfg, resume=args.resume, overwrite=args.overwrite, progress=args.progress)
    except TrainingInterrupted as e:  # SIGINT/SIGTERM: last.pt was saved; the shell's 128 + signal
        print(f"pdfnet train: {e}", file=sys.stderr)
        return 128 + e.signum
    finally:
        D.cleanup()
    if D.current_info().is_main:
        metric = cfg.train.select_metric
        best = f"{res.best[metric]:.4f} at step {res.best['step']}" if metric in res.best else "n/a"
        print(f"done: {res.step} steps in {res.seconds:.0f} s; best val {metric} {best}; "
              f"run dir {res.run_dir}")
    return 0
