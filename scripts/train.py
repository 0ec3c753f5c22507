#!/usr/bin/env python
"""``python scripts/train.py --config FILE [--set k=v ...] [--init W] [--resume auto]``: ``pdfnet train``.

A thin wrapper for those who expect a ``train.py`` (every argument goes to ``pdfnet train``; ``--help``
lists them). Works from a checkout without installing; multi-GPU: ``torchrun --nproc-per-node N
scripts/train.py --config FILE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's pdfnet, installed or not

from pdfnet.cli.main import main  # noqa: E402 - after the path set-up above

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
