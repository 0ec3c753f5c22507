#!/usr/bin/env python
"""``python scripts/eval.py --config FILE --ckpt CKPT [--no-tta] [--splits ...]``: ``pdfnet eval``.

A thin wrapper for those who expect an ``eval.py`` (every argument goes to ``pdfnet eval``; ``--help``
lists them, the folder mode ``--pred-dir P --gt-dir G`` included). Works from a checkout without installing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's pdfnet, installed or not

from pdfnet.cli.main import main  # noqa: E402 - after the path set-up above

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
