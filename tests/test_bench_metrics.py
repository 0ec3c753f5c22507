"""``pdfnet bench metrics`` on a tiny synthetic set: runs, prints timings, values agree (not the ratio)."""

from __future__ import annotations

import json

import pytest

from pdfnet.cli.main import main

pytest.importorskip("py_sod_metrics")
pytest.importorskip("skimage")


def test_bench_metrics_tiny_synthetic(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "metrics", "--synthetic", "3", "--size", "64x80", "--json", str(out), "--quiet",
               "--keep", str(tmp_path / "syn")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "baseline" in text and "speed-up cold" in text and "speed-up cached" in text
    assert "pdfnet eval (one process)" in text  # 3 images: eval's automatic choice is no worker pool
    res = json.loads(out.read_text())
    assert res["n_images"] == 3
    v = res["values"]
    assert v["hce_equal_images"] == 3
    assert all(d is not None and d <= 1e-9 for d in v["max_abs_diff"].values())
    assert v["per_image_curve_max_abs_diff"] <= 1e-12
    for k in ("baseline", "ours_cold", "ours_cached", "baseline_cached"):
        assert res[k]["wall_s"] > 0
    ev = res["eval"]
    assert ev["workers"] == 1 and ev["cold_wall_s"] > 0 and ev["cached_wall_s"] > 0
    assert all(d is not None and d <= 1e-9 for d in ev["max_abs_diff"].values())
    assert len(list((tmp_path / "syn" / "gt").glob("*.png"))) == 3


def test_bench_without_target_prints_help(capsys):
    assert main(["bench"]) == 2
    assert "metrics" in capsys.readouterr().out


def test_bench_metrics_times_eval_with_a_worker_pool(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "metrics", "--synthetic", "3", "--size", "48x64", "--workers", "2", "--repeat", "2",
               "--no-baseline-cached", "--json", str(out), "--quiet"])
    assert rc == 0
    assert "the caller + 1 worker;" in capsys.readouterr().out
    res = json.loads(out.read_text())
    ev = res["eval"]
    assert ev["workers"] == 2 and ev["pool_startup_s"] > 0
    assert all(d is not None and d <= 1e-9 for d in ev["max_abs_diff"].values())
    assert res["repeat"] == 2 and len(res["rounds"]) == 2 and "baseline_cached" not in res
    # every reported time is the best of the rounds
    assert res["baseline"]["wall_s"] == pytest.approx(min(r["baseline"] for r in res["rounds"]), abs=1e-3)
