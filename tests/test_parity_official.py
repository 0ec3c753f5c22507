"""Numerical parity with the official March-2025 PDFNet (fixture: tests/fixtures/pdfnet_official).

The fixture's synthetic weights are loaded with :func:`from_official_state_dict` and every output
(P0..P5, Q0..Q4) and the Swin/global-token intermediates are compared with the stored official
values, with the fixture README's tolerances. One forward per size is shared by all assertions.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from helpers import official_expected, official_fixture, official_keys_path

from pdfnet.models.official import from_official_state_dict


@pytest.fixture(scope="module")
def official_model():
    """The paper-config model with the fixture's seed-0 weights (built once for the module)."""
    mw = official_fixture()
    return from_official_state_dict(mw.official_state_dict(str(official_keys_path()), 0))


def _run_official_case(model, size: int, seed: int = 0, *, capture: bool = False) -> dict:
    mw = official_fixture()
    expected = official_expected(size, seed)
    inputs = mw.make_inputs(seed, size)
    calls: dict[str, list] = {"backbone": [], "projector": []}
    hooks = []
    if capture:
        enc = model.encoder
        hooks.append(enc.backbone.register_forward_hook(lambda m, i, o: calls["backbone"].append(o)))
        hooks.append(enc.projector.register_forward_hook(lambda m, i, o: calls["projector"].append(o)))
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model(inputs["image"], inputs["depth"], with_depth_decoder=True)
    seconds = time.perf_counter() - t0
    for h in hooks:
        h.remove()
    return {"out": out, "expected": expected, "calls": calls, "seconds": seconds, "inputs": inputs}


def _assert_close(name: str, ours: torch.Tensor, expected: np.ndarray, tol: float, atol: float | None = None):
    a = ours.detach().float().cpu().numpy()
    assert a.shape == expected.shape, f"{name}: shape {a.shape} != expected {expected.shape}"
    atol = tol if atol is None else atol
    diff = np.abs(a - expected)
    print(f"parity: {name} {list(a.shape)} max|diff| {diff.max():.2e}")  # README's Fidelity table (-s)
    bad = diff > atol + tol * np.abs(expected)
    assert not bad.any(), f"{name}: {int(bad.sum())} elements off, max |diff| {diff.max():.3e}"


@pytest.fixture(scope="module")
def case256(official_model):
    return _run_official_case(official_model, 256, capture=True)


@pytest.mark.parametrize("i", range(6))
def test_mask_logits_S256(case256, i):
    out = case256["out"]
    _assert_close(f"P{i}", out.all_logits[i], case256["expected"][f"P{i}"], 1e-4)


@pytest.mark.parametrize("j", range(5))
def test_depth_logits_S256(case256, j):
    _assert_close(f"Q{j}", case256["out"].depth_logits[j], case256["expected"][f"Q{j}"], 1e-4)


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_swin_intermediates_S256(case256, level):
    exp = case256["expected"]
    glob, tiles = case256["calls"]["backbone"]  # pass 1: [RGB; depth] at S/2; pass 2: the 64 tiles
    _assert_close(f"rgb_L{level}", glob[level - 1][:1], exp[f"dbg_swin_rgb_L{level}"], 1e-4, 2e-4)
    _assert_close(f"depth_L{level}", glob[level - 1][1:2], exp[f"dbg_swin_depth_L{level}"], 1e-4, 2e-4)
    _assert_close(f"tile0_L{level}", tiles[level - 1][:1], exp[f"dbg_swin_tile0_L{level}"], 1e-4, 2e-4)


def test_global_tokens_S256(case256):
    exp = case256["expected"]
    glob, tiles = case256["calls"]["projector"]
    _assert_close("glob_rgb_G", glob.g[:1], exp["dbg_glob_rgb_G"], 1e-4)
    _assert_close("glob_depth_G", glob.g[1:2], exp["dbg_glob_depth_G"], 1e-4)
    _assert_close("tile0_G", tiles.g[:1], exp["dbg_tile0_G"], 1e-4)


def test_fixture_inputs_match_stored(case256):
    exp = case256["expected"]
    for k in ("image", "depth"):
        np.testing.assert_array_equal(case256["inputs"][k].numpy(), exp[f"in_{k}"])


@pytest.mark.slow
def test_parity_S1024(official_model):
    """The size that exercises BIS fully (k > 1 at every FSE). The forward takes ≈ 45 s of CPU time
    on 2 cores (≈ 1–3 min wall on the shared, loaded dev machine)."""
    case = _run_official_case(official_model, 1024)
    out, exp = case["out"], case["expected"]
    for i, p in enumerate(out.all_logits):
        _assert_close(f"P{i}", p, exp[f"P{i}"], 3e-4)
    for j, q in enumerate(out.depth_logits):
        _assert_close(f"Q{j}", q, exp[f"Q{j}"], 3e-4)
    print(f"S=1024 official-weights forward (with depth decoder): {case['seconds']:.1f}s")
