"""scripts/gpu_check.sh: syntax, and its CPU dry run (the same steps at tiny sizes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import REPO

SCRIPT = REPO / "scripts" / "gpu_check.sh"
BENCHES = ["depth", "model_b1", "model_batched", "predict", "train"]


def test_gpu_check_is_valid_bash():
    assert SCRIPT.exists()
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")
@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "gpu out"  # a space in the path on purpose
    env = {**os.environ, "GPU_CHECK_DRY": "1", "OUT": str(out), "PY": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "pytest_gpu.txt", "pytest_gpu.xml",
                                                     "summary.txt"]
    doc = json.loads((out / "gpu_check.json").read_text())
    assert doc["dry_run"] is True
    steps = {s["step"]: s for s in doc["steps"]}
    assert list(steps) == ["pytest_gpu", *["model_b1", "model_batched", "train", "depth", "predict"],
                           "model_compile"]
    assert steps["model_compile"]["skipped"] is True
    assert all(s["rc"] == 0 for name, s in steps.items() if name != "model_compile")
    assert sorted(doc["reports"]) == BENCHES
    for name, rep in doc["reports"].items():
        assert len(rep["results"]) == 2, name  # baseline + candidate, side by side
        assert all(r["error"] is None and r["median_ms"] > 0 for r in rep["results"]), name
        assert rep["baseline"] == rep["results"][0]["name"] and rep["ratios_vs_baseline"], name
    b1 = doc["reports"]["model_b1"]
    assert b1["results"][1]["options"]["fast_upconv"] and b1["results"][1]["options"]["channels_last"]
    assert b1["results"][0]["flops"] > 0  # counted once per configuration, shared by both cases
    assert b1["results"][0]["flops"] == b1["results"][1]["flops"]
    summary = (out / "summary.txt").read_text()
    assert "DRY RUN" in summary and "pdfnet bench train" in summary and "failed steps: 0" in summary
