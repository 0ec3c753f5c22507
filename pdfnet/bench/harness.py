"""Benchmark harness: warm-up, timing, FLOPs, peak memory, side-by-side baseline ratios, JSON.

It needs only callables. A *case* is a name plus a ``setup()`` that returns the step to time (a
zero-argument callable; setup is where models are built, moved, compiled or graph-captured, and it
is timed separately as ``setup_s``). :func:`run_cases` runs every case of a workload in the same
process, one after the other, and reports each one's numbers and its ratios to the baseline case
(the first one unless named), so speed-ups are always measured side by side on the same machine.

Timing: on CUDA each iteration is bracketed by CUDA events (GPU time between the two points in the
stream, including any launch gaps) and the device is synchronised once after the loop; on CPU it is
wall time (``time.perf_counter``). The statistic reported is the median over ``iters`` iterations
after ``warmup`` untimed ones. FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` run once
per configuration (on an eager call; the count does not depend on dtype or compilation), so
``tflops_per_s = flops / median_time``. Peak memory is ``torch.cuda.max_memory_allocated`` over one
extra call after resetting the counter (CUDA only; CPU reports ``None`` plus the process's RSS
high-water mark, which only ever grows and is informational).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from pdfnet.utils.atomic import atomic_write_bytes
from pdfnet.utils.provenance import git_info

__all__ = [
    "BenchCase",
    "BenchReport",
    "BenchResult",
    "count_flops",
    "environment",
    "measure_peak_memory",
    "run_cases",
    "synchronize",
    "time_callable",
]

Step = Callable[[], Any]


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_callable(fn: Step, device: torch.device, *, warmup: int = 3, iters: int = 10) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``iters`` timed times.

    Returns:
        Per-iteration times in milliseconds (CUDA-event time on CUDA, wall time on CPU).
    """
    if iters < 1:
        raise ValueError("iters must be >= 1")
    for _ in range(max(0, warmup)):
        fn()
    synchronize(device)
    if device.type == "cuda":
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(iters)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return [s.elapsed_time(e) for s, e in events]
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def count_flops(fn: Step) -> int:
    """Total FLOPs of one call of ``fn`` (forward and, if ``fn`` runs it, backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _rss_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) * (1 if sys.platform == "darwin" else 1024)


def measure_peak_memory(fn: Step, device: torch.device) -> int | None:
    """Peak bytes allocated by PyTorch during one call of ``fn`` (CUDA); None (and no call) elsewhere."""
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


@dataclass
class BenchCase:
    """One configuration to benchmark.

    Attributes:
        name: short label (e.g. ``"fp32-eager"``).
        setup: builds everything and returns the zero-argument step to time.
        images_per_call: images processed by one step (the batch size), for img/s.
        options: what distinguishes this case (dtype, compile, ...), copied to the JSON.
        flops_fn: returns the FLOP count of one step (e.g. counted on an eager or meta-device model
            when the timed step is compiled or graph-captured); default: count the timed step.
        flops_key: cases with the same key share one FLOP count (one count per configuration).
    """

    name: str
    setup: Callable[[], Step]
    images_per_call: int
    options: dict[str, Any] = field(default_factory=dict)
    flops_fn: Callable[[], int] | None = None
    flops_key: str | None = None


@dataclass
class BenchResult:
    """Measured numbers of one case (times in ms, memory in bytes)."""

    name: str
    options: dict[str, Any]
    images_per_call: int
    warmup: int
    iters: int
    setup_s: float
    times_ms: list[float]
    median_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    images_per_s: float
    flops: int | None
    tflops_per_s: float | None
    peak_mem_bytes: int | None
    peak_mem_per_image_mib: float | None
    process_peak_rss_mib: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict; NaN fields of a failed case become None (strict JSON)."""
        d = dataclasses.asdict(self)
        return {k: (None if isinstance(v, float) and v != v else v) for k, v in d.items()}


@dataclass
class BenchReport:
    """All cases of one workload, measured in one process, with ratios to the baseline case."""

    workload: str
    env: dict[str, Any]
    settings: dict[str, Any]
    results: list[BenchResult]
    baseline: str | None

    def ratios(self) -> dict[str, dict[str, float | None]]:
        """Per case: speedup (baseline median / case median), throughput ratio, memory-per-image ratio."""
        base = next((r for r in self.results if r.name == self.baseline and r.error is None), None)
        out: dict[str, dict[str, float | None]] = {}
        for r in self.results:
            if base is None or r.error is not None:
                continue
            mem = None
            if r.peak_mem_per_image_mib and base.peak_mem_per_image_mib:
                mem = r.peak_mem_per_image_mib / base.peak_mem_per_image_mib
            out[r.name] = {
                "speedup_latency": base.median_ms / r.median_ms,
                "throughput_ratio": r.images_per_s / base.images_per_s,
                "memory_per_image_ratio": mem,
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "env": self.env,
            "settings": self.settings,
            "baseline": self.baseline,
            "results": [r.to_dict() for r in self.results],
            "ratios_vs_baseline": self.ratios(),
        }

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write the report atomically (creating parent folders)."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        return atomic_write_bytes(path, (text + "\n").encode())

    def format_table(self) -> str:
        """A fixed-width text table for the console."""
        ratios = self.ratios()
        head = (f"{'case':<28} {'median ms':>10} {'img/s':>9} {'TFLOP/s':>8} {'peak MiB/img':>12} "
                f"{'setup s':>8} {'x base':>7}")
        lines = [f"pdfnet bench {self.workload} on {self.env.get('device_name')} "
                 f"({self.env.get('device')}); baseline: {self.baseline}", head, "-" * len(head)]
        for r in self.results:
            if r.error is not None:
                lines.append(f"{r.name:<28} FAILED: {r.error}")
                continue
            tf = f"{r.tflops_per_s:.3g}" if r.tflops_per_s is not None else "-"
            mem = f"{r.peak_mem_per_image_mib:.0f}" if r.peak_mem_per_image_mib is not None else "-"
            sp = ratios.get(r.name, {}).get("throughput_ratio")
            sps = f"{sp:.2f}" if sp is not None else "-"
            lines.append(f"{r.name:<28} {r.median_ms:>10.2f} {r.images_per_s:>9.2f} {tf:>8} {mem:>12} "
                         f"{r.setup_s:>8.1f} {sps:>7}")
        return "\n".join(lines)


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, device and host facts that make a benchmark result interpretable."""
    env: dict[str, Any] = {
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": platform.processor() or platform.machine(),
        "git": git_info(short=True)["commit"],
        "command": " ".join(sys.argv),
        "timing": "cuda-events" if device.type == "cuda" else "wall-clock (CPU)",
    }
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        env["device_name"] = torch.cuda.get_device_name(idx)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
        env["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
        env["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
    return env


def _result(case: BenchCase, warmup: int, iters: int, setup_s: float, times: list[float], peak: int | None,
            flops: int | None) -> BenchResult:
    med = statistics.median(times)
    n = case.images_per_call
    return BenchResult(
        name=case.name,
        options=dict(case.options),
        images_per_call=n,
        warmup=warmup,
        iters=iters,
        setup_s=setup_s,
        times_ms=[round(t, 4) for t in times],
        median_ms=med,
        mean_ms=statistics.fmean(times),
        min_ms=min(times),
        max_ms=max(times),
        images_per_s=n / (med / 1e3),
        flops=flops,
        tflops_per_s=(flops / (med / 1e3) / 1e12) if flops else None,
        peak_mem_bytes=peak,
        peak_mem_per_image_mib=(peak / n / 2**20) if peak is not None else None,
        process_peak_rss_mib=_rss_peak_bytes() / 2**20,
    )


def _failed(case: BenchCase, warmup: int, iters: int, e: BaseException) -> BenchResult:
    nan = float("nan")
    return BenchResult(case.name, dict(case.options), case.images_per_call, warmup, iters, 0.0, [], nan, nan,
                       nan, nan, 0.0, None, None, None, None, _rss_peak_bytes() / 2**20,
                       error=f"{type(e).__name__}: {e}")


def _flops(case: BenchCase, step: Step, cache: dict[str, int | None], count: bool) -> int | None:
    if not count:
        return None
    key = case.flops_key or case.name
    if key not in cache:
        cache[key] = case.flops_fn() if case.flops_fn is not None else count_flops(step)
    return cache[key]


def _run_one(case: BenchCase, device: torch.device, warmup: int, iters: int,
             flops_cache: dict[str, int | None], count: bool) -> BenchResult:
    t0 = time.perf_counter()
    step = case.setup()
    setup_s = time.perf_counter() - t0
    times = time_callable(step, device, warmup=warmup, iters=iters)
    peak = measure_peak_memory(step, device)
    return _result(case, warmup, iters, setup_s, times, peak, _flops(case, step, flops_cache, count))


def _run_interleaved(cases: Sequence[BenchCase], device: torch.device, warmup: int, iters: int,
                     count: bool, keep_going: bool) -> list[BenchResult]:
    """Set every case up, then alternate them iteration by iteration (A B A B ...), so a slow drift
    of the machine (other jobs on a shared CPU) hits all cases alike."""
    steps: dict[int, tuple[Step, float]] = {}
    results: dict[int, BenchResult] = {}
    times: dict[int, list[float]] = {i: [] for i in range(len(cases))}

    def fail(i: int, e: BaseException) -> None:
        if not keep_going:
            raise e
        results[i] = _failed(cases[i], warmup, iters, e)
        steps.pop(i, None)

    for i, case in enumerate(cases):
        try:
            t0 = time.perf_counter()
            steps[i] = (case.setup(), time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            fail(i, e)
    for _ in range(max(0, warmup)):
        for i in list(steps):
            try:
                steps[i][0]()
            except Exception as e:  # noqa: BLE001
                fail(i, e)
    synchronize(device)
    for _ in range(iters):
        for i in list(steps):
            try:
                times[i] += time_callable(steps[i][0], device, warmup=0, iters=1)
            except Exception as e:  # noqa: BLE001
                fail(i, e)
    flops_cache: dict[str, int | None] = {}
    for i, (step, setup_s) in list(steps.items()):
        try:
            # peak of one call with every case resident: on CUDA this includes the other cases' weights
            peak = measure_peak_memory(step, device)
            results[i] = _result(cases[i], warmup, iters, setup_s, times[i], peak,
                                 _flops(cases[i], step, flops_cache, count))
        except Exception as e:  # noqa: BLE001
            fail(i, e)
    return [results[i] for i in range(len(cases))]


def run_cases(
    workload: str,
    cases: Sequence[BenchCase],
    device: torch.device,
    *,
    warmup: int = 3,
    iters: int = 10,
    baseline: str | None = None,
    count_flops_: bool = True,
    settings: dict[str, Any] | None = None,
    keep_going: bool = True,
    log: Callable[[str], None] | None = None,
    interleave: bool = False,
) -> BenchReport:
    """Run every case in this process and collect a :class:`BenchReport`.

    Args:
        workload: name for the report (model, train, depth, predict, ...).
        cases: the configurations; the baseline is ``baseline`` or the first case.
        device: where the cases run (for synchronisation, events and memory counters).
        warmup / iters: untimed and timed iterations per case.
        count_flops_: count FLOPs once per configuration.
        settings: free-form settings copied to the report (sizes, batch, ...).
        keep_going: record a failing case (e.g. a compile error) as an error and continue;
            False re-raises.
        log: called with a one-line progress message per case.
        interleave: set all cases up first and alternate their timed iterations (robust ratios on a
            shared, noisy CPU; on CUDA the peak memory then includes the other cases' resident
            tensors). Default: one case after the other, each freed before the next.
    """
    if interleave:
        if log is not None:
            log(f"[bench {workload}] {len(cases)} cases, interleaved ...")
        results = _run_interleaved(cases, device, warmup, iters, count_flops_, keep_going)
    else:
        flops_cache: dict[str, int | None] = {}
        results = []
        for case in cases:
            if log is not None:
                log(f"[bench {workload}] {case.name} ...")
            try:
                res = _run_one(case, device, warmup, iters, flops_cache, count_flops_)
            except Exception as e:  # noqa: BLE001 - a failing case is data, not a crash
                if not keep_going:
                    raise
                res = _failed(case, warmup, iters, e)
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            results.append(res)
    if log is not None:
        for res in results:
            if res.error is None:
                log(f"[bench {workload}] {res.name}: {res.median_ms:.2f} ms, {res.images_per_s:.2f} img/s")
    base = baseline or (cases[0].name if cases else None)
    settings = {**dict(settings or {}), "interleave": interleave}
    return BenchReport(workload, environment(device), settings, results, base)
