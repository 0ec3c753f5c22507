"""The bench harness on plain callables: timing, FLOPs, baseline ratios, failures, JSON."""

from __future__ import annotations

import json
import time

import pytest
import torch

from pdfnet.bench.harness import BenchCase, count_flops, measure_peak_memory, run_cases, time_callable

CPU = torch.device("cpu")


def test_time_callable_counts_warmup_and_iters():
    calls = []
    times = time_callable(lambda: calls.append(1), CPU, warmup=2, iters=5)
    assert len(times) == 5 and len(calls) == 7
    assert all(t >= 0 for t in times)
    with pytest.raises(ValueError):
        time_callable(lambda: None, CPU, iters=0)


def test_time_callable_measures_wall_time():
    times = time_callable(lambda: time.sleep(0.02), CPU, warmup=0, iters=3)
    assert all(18 <= t < 500 for t in times)


def test_count_flops_matmul_and_backward():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4
    w = torch.randn(16, 4, requires_grad=True)
    # forward mm + backward grad of w (one mm of the same size; a needs no grad)
    assert count_flops(lambda: (a @ w).sum().backward()) == 2 * (2 * 8 * 16 * 4)


def test_peak_memory_none_on_cpu():
    called = []
    assert measure_peak_memory(lambda: called.append(1), CPU) is None
    assert called == []


def _sleeper(ms):
    def setup():
        return lambda: time.sleep(ms / 1e3)
    return setup


def test_run_cases_side_by_side_ratios_and_json(tmp_path):
    a, b = torch.randn(32, 32), torch.randn(32, 32)
    cases = [
        BenchCase("slow", _sleeper(40), images_per_call=2, options={"k": 1},
                  flops_fn=lambda: count_flops(lambda: a @ b), flops_key="cfg"),
        BenchCase("fast", _sleeper(10), images_per_call=2, flops_key="cfg"),
    ]
    rep = run_cases("unit", cases, CPU, warmup=1, iters=3, settings={"size": 1})
    assert rep.baseline == "slow"
    slow, fast = rep.results
    assert slow.flops == fast.flops == 2 * 32**3  # one count per configuration, shared
    assert slow.tflops_per_s is not None and slow.tflops_per_s > 0
    assert slow.images_per_s == pytest.approx(2 / (slow.median_ms / 1e3))
    r = rep.ratios()
    assert r["slow"]["speedup_latency"] == pytest.approx(1.0)
    assert 2.0 < r["fast"]["speedup_latency"] < 6.0
    assert r["fast"]["throughput_ratio"] == pytest.approx(r["fast"]["speedup_latency"])
    assert r["fast"]["memory_per_image_ratio"] is None  # CPU: no allocator peak
    path = rep.write_json(tmp_path / "sub" / "out.json")
    data = json.loads(path.read_text())
    assert data["workload"] == "unit" and data["settings"] == {"size": 1, "interleave": False}
    assert [x["name"] for x in data["results"]] == ["slow", "fast"]
    assert data["results"][0]["options"] == {"k": 1}
    assert data["env"]["timing"].startswith("wall-clock")
    assert "fast" in data["ratios_vs_baseline"]
    assert "slow" in rep.format_table() and "fast" in rep.format_table()


def test_failing_case_is_recorded_not_raised():
    def bad():
        raise RuntimeError("no compiler")

    rep = run_cases("unit", [BenchCase("ok", _sleeper(1), 1), BenchCase("bad", bad, 1)], CPU,
                    warmup=0, iters=1, count_flops_=False)
    assert rep.results[1].error == "RuntimeError: no compiler"
    assert "bad" not in rep.ratios() and "FAILED" in rep.format_table()
    assert json.loads(json.dumps(rep.to_dict(), allow_nan=False))["results"][1]["median_ms"] is None
    with pytest.raises(RuntimeError):
        run_cases("unit", [BenchCase("bad", bad, 1)], CPU, warmup=0, iters=1, keep_going=False)


def test_interleaved_alternates_cases_and_keeps_ratios():
    order = []

    def mk(tag, ms):
        def setup():
            order.append(f"setup-{tag}")
            return lambda: (order.append(tag), time.sleep(ms / 1e3))
        return setup

    def broken():
        return lambda: 1 / 0

    cases = [BenchCase("a", mk("a", 30), 1), BenchCase("b", mk("b", 10), 1), BenchCase("c", broken, 1)]
    rep = run_cases("unit", cases, CPU, warmup=1, iters=3, count_flops_=False, interleave=True)
    assert order == ["setup-a", "setup-b"] + ["a", "b"] * 4  # setups, then warm-up + 3 timed rounds, A B A B
    a, b, c = rep.results
    assert len(a.times_ms) == len(b.times_ms) == 3 and c.error.startswith("ZeroDivisionError")
    assert 1.5 < rep.ratios()["b"]["speedup_latency"] < 6
    assert rep.settings["interleave"] is True
