"""Timing helpers for the depth models (used by the speed work; ``time_depth`` covers the full pipeline)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from pdfnet.depth.estimator import DepthEstimator
from pdfnet.depth.transforms import quantize


@dataclass
class ModelTiming:
    """Median wall time of one batch through :meth:`DepthEstimator.run_prepared` (+ min–max)."""

    batch_size: int
    input_hw: tuple[int, int]
    """Network input size of the batch."""
    ms_per_batch: float
    images_per_s: float
    peak_mem_mib: float | None
    """Peak CUDA memory during the timed batches (None on CPU)."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def benchmark_model(
    estimator: DepthEstimator,
    *,
    batch_size: int = 8,
    image_hw: tuple[int, int] = (518, 518),
    warmup: int = 3,
    iters: int = 10,
) -> ModelTiming:
    """Time the depth network on random images of ``image_hw`` (already on the device).

    What is timed per batch: preprocessing (resize to the network size, normalisation), the forward
    under the estimator's dtype, ReLU + resize back to ``image_hw`` and the per-image min–max to 8 bit,
    i.e. what the GPU does in ``pdfnet depth``; not decode, upload or PNG encode (see ``time_depth``).
    ``image_hw=(518, 518)`` with input size 518 is the "518², batch 8" workload of the performance spec.
    """
    dev = estimator.device
    g = torch.Generator().manual_seed(0)
    imgs = [
        torch.randint(0, 256, (*image_hw, 3), generator=g, dtype=torch.uint8).to(dev)
        for _ in range(batch_size)
    ]

    def step() -> None:
        x, sizes = estimator.prepare(imgs)
        for d in estimator.run_prepared(x, sizes):
            quantize(d, 8)

    for _ in range(max(warmup, 0)):
        step()
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(max(iters, 1)):
        t0 = time.perf_counter()
        step()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    ms = sorted(times)[len(times) // 2] * 1000.0
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    return ModelTiming(
        batch_size=batch_size,
        input_hw=estimator.target_size(*image_hw),
        ms_per_batch=ms,
        images_per_s=batch_size * 1000.0 / ms,
        peak_mem_mib=peak,
    )
