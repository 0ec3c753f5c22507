"""``pdfnet train``: train PDFNet from a config (single process, or one process per GPU under torchrun)."""

from __future__ import annotations

import argparse
import sys

from pdfnet.cli.common import add_config_args, config_from_args
from pdfnet.engine import distributed as D
from pdfnet.engine.trainer import TrainingInterrupted, train


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Train PDFNet. Multi-GPU / multi-node: torchrun --nproc_per_node=N -m pdfnet.cli.main "
                     "train --config FILE (DDP; train.batch_size is per process).")
    add_config_args(p, required=True)
    p.add_argument("--resume", metavar="auto|PATH",
                   help="'auto': continue from <train.output_dir>/last.pt if present; or a train-state path")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a train.output_dir that holds a run, moving its files into "
                        "<train.output_dir>/previous-<time>/ (nothing is deleted)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    try:
        res = train(cfg, resume=args.resume, overwrite=args.overwrite, progress=args.progress)
    except TrainingInterrupted as e:  # SIGINT/SIGTERM: last.pt was saved; the shell's 128 + signal
        print(f"pdfnet train: {e}", file=sys.stderr)
        return 128 + e.signum
    finally:
        D.cleanup()
    if D.current_info().is_main:
        best = f"{res.best_maxF:.4f}" if res.best_maxF is not None else "n/a"
        print(f"done: {res.step} steps in {res.seconds:.0f} s; best val maxF {best}; run dir {res.run_dir}")
    return 0
