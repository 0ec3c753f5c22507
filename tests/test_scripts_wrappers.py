"""``scripts/train.py`` and ``scripts/eval.py`` are the CLI: same parser, same one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.parametrize("name", ["train", "eval"])
def test_wrapper_is_the_subcommand(name, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the script finds the checkout itself
    run = subprocess.run([sys.executable, str(REPO / "scripts" / f"{name}.py"), "--help"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and f"usage: pdfnet {name}" in run.stdout and "--config" in run.stdout
    extra = ["--ckpt", "x"] if name == "eval" else []
    bad = subprocess.run([sys.executable, str(REPO / "scripts" / f"{name}.py"), "--config",
                          str(tmp_path / "missing.yaml"), *extra], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "config file not found" in bad.stderr and "Traceback" not in bad.stderr
