"""``pdfnet bench metrics --processes``: whole processes timed; both sides score the same set alike."""

from __future__ import annotations

import numpy as np
import pytest

from pdfnet.bench.processes import format_processes, time_processes
from pdfnet.utils.io import write_image


@pytest.mark.slow  # starts 8 interpreters; the reference one imports scikit-learn through PySODMetrics
def test_whole_process_timing_scores_alike(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        gt = np.zeros((48, 64), np.uint8)
        gt[10:40, 8:50] = 255
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "pred" / f"{i}.png", rng.integers(0, 256, (48, 64), dtype=np.uint8))
    res = time_processes(tmp_path / "pred", tmp_path / "gt", repeat=1)
    assert res["ours_s"] > 0 and res["reference_s"] > 0 and res["version_s"] > 0
    for k, v in res["check"].items():
        assert v["ours"] == pytest.approx(v["reference"], abs=1e-9), k
    assert "agree" in format_processes(res)
