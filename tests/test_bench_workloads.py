"""Benchmark workload building blocks: random-weight DAv2 architectures, FLOP counting."""

from __future__ import annotations

import torch

from pdfnet.bench.harness import count_flops
from pdfnet.bench.workloads import model_flops, random_depth_model


def test_random_dav2_small_has_the_release_architecture():
    # Depth-Anything-V2-Small has 24.8 M parameters; same modules => same speed as the real weights.
    with torch.device("meta"):  # shapes only: no init cost
        model = random_depth_model("small")
    assert sum(p.numel() for p in model.parameters()) == 24_785_089
    out = random_depth_model("tiny")(pixel_values=torch.rand(1, 3, 56, 70)).predicted_depth
    assert out.shape[0] == 1 and out.ndim == 3


def test_meta_flop_count_matches_real_count_for_matmul_models():
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    x = torch.randn(2, 3, 16, 16)
    real = count_flops(lambda: model(x))
    meta = model_flops(model, lambda d: (x.to(d),), lambda m, t: m(t))
    assert meta == real == 2 * 2 * 16 * 16 * (8 * 3 * 9 + 4 * 8)
    assert next(model.parameters()).device.type == "cpu"  # the original model is untouched
