"""Commands that need no tensors start without torch (``pdfnet --version`` well under half a second).

Each command runs in a fresh interpreter; the check is on ``sys.modules`` after the command returned, and on
``-X importtime`` for ``--version`` (the command line the issue names).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from helpers import REPO

from pdfnet.utils.io import write_image

#: torch and the packages that import it
HEAVY = ("torch", "torchvision", "timm", "transformers")

#: runs each command line of argv[1] (JSON) in turn; after each, which of HEAVY are loaded
_PROBE = """
import json, sys
from pdfnet.cli.main import main
out = []
for argv in json.loads(sys.argv[1]):
    try:
        rc = main(argv)
    except SystemExit as e:  # --help
        rc = e.code
    out.append({"argv": argv, "rc": rc, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)})
print(json.dumps(out))
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(*commands: list[str]) -> list[dict]:
    """Run the command lines one after the other in one fresh interpreter."""
    probe = f"HEAVY = {HEAVY!r}\n{_PROBE}"
    out = subprocess.run([sys.executable, "-c", probe, json.dumps(commands)], capture_output=True, text=True,
                         env=_env(), timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write_split(split, n=2):
    """``split/im`` (the images; they double as predictions) and ``split/gt`` (masks)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        gt = np.zeros((40, 48), np.uint8)
        gt[8:30, 10:40] = 255
        write_image(split / "gt" / f"{i}.png", gt)
        write_image(split / "im" / f"{i}.png", rng.integers(0, 256, (40, 48), dtype=np.uint8))
    return split / "im", split / "gt"


def test_version_imports_no_torch():
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "pdfnet.cli.main", "--version"],
                         capture_output=True, text=True, env=_env(), timeout=120, cwd=REPO)
    assert out.returncode == 0 and out.stdout.startswith("pdfnet ")
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "pdfnet.errors" in imported  # the parse sees the imports
    assert not {m for m in imported if m.split(".")[0] in HEAVY}
    assert "pdfnet.cli.eval" not in imported  # only the command that runs is imported


def test_commands_without_tensors_import_no_torch(tmp_path):
    pred, gt = _write_split(tmp_path / "data" / "DIS-VD")
    res = tmp_path / "res"
    got = _run(
        ["--help"],
        ["config"],
        ["score", "--pred-dir", str(pred), "--gt-dir", str(gt), "--quiet", "--workers", "1",
         "--split", "DIS-VD", "--json", str(res / "DIS-VD.json")],
        ["eval", "--pred-dir", str(pred), "--gt-dir", str(gt), "--quiet", "--workers", "1"],
        ["report", "--json-dir", str(res), "--out", str(tmp_path / "rep"), "--no-plots"],
        ["data", "check", str(tmp_path / "data"), "--no-progress", "--no-cache"],
        ["eval", "--help"],
    )
    assert len(got) == 7
    for r in got:
        assert r["rc"] == 0 and r["heavy"] == [], r
    assert (res / "DIS-VD.json").is_file() and any((tmp_path / "rep").iterdir())  # the commands did work
