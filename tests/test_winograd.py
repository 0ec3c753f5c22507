"""Winograd F(4×4, 3×3) convolution (pdfnet.models.winograd) and its use in the CRS blocks and ``--fast``."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_model_config

import pdfnet.models.layers as layers
from pdfnet.bench.workloads import make_inputs
from pdfnet.inference.fast import FastInference, FastPathOptions, set_winograd
from pdfnet.models import build_model
from pdfnet.models.layers import CRS
from pdfnet.models.winograd import winograd_conv3x3, winograd_weight

SHAPES = [  # (B, C_in, C_out, H, W): multiples of the 4×4 tile and not, tiny maps, one wide channel count
    (1, 8, 5, 7, 9),
    (2, 16, 16, 32, 32),
    (1, 3, 4, 1, 1),
    (1, 4, 6, 2, 13),
    (2, 40, 24, 17, 8),
]


def _case(shape, dtype=torch.float32, seed=0):
    b, c, o, h, w = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype)
    weight = torch.randn(o, c, 3, 3, generator=g, dtype=dtype) / (3 * c ** 0.5)
    bias = torch.randn(o, generator=g, dtype=dtype)
    return x, weight, bias


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("tile_rows", [1, 3])
def test_equals_direct_convolution_in_float64(shape, tile_rows):
    """The algorithm is exact: in float64 only rounding separates it from F.conv2d."""
    x, w, b = _case(shape, torch.float64)
    out = winograd_conv3x3(x, w, b, tile_rows=tile_rows)
    torch.testing.assert_close(out, F.conv2d(x, w, b, padding=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fp32_close_to_direct_convolution(shape, channels_last, with_bias):
    x, w, b = _case(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    b = b if with_bias else None
    ref = F.conv2d(x, w, b, padding=1)
    out = winograd_conv3x3(x, w, b)
    assert out.shape == ref.shape and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-5 * ref.abs().max().item())


def test_wide_layer_error_is_small():
    """A 128 → 128 layer (the head's width): max error a few 1e-6 of the output's range."""
    x, w, b = _case((1, 128, 128, 40, 44), seed=1)
    ref = F.conv2d(x, w, b, padding=1)
    err = (winograd_conv3x3(x, w, b) - ref).abs().max().item() / ref.abs().max().item()
    print(f"relative max error {err:.2e}")
    assert err < 2e-5


def test_weight_transform_and_bad_arguments():
    w = torch.randn(5, 4, 3, 3)
    assert winograd_weight(w).shape == (36, 4, 5)
    with pytest.raises(ValueError, match="3, 3"):
        winograd_weight(torch.randn(5, 4, 5, 5))
    with pytest.raises(ValueError, match="x must be"):
        winograd_conv3x3(torch.randn(1, 3, 8, 8), w)
    with pytest.raises(ValueError, match="tile_rows"):
        winograd_conv3x3(torch.randn(1, 4, 8, 8), w, tile_rows=0)


@pytest.fixture
def spy(monkeypatch):
    """Count the CRS blocks' Winograd calls."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return winograd_conv3x3(*args, **kwargs)

    monkeypatch.setattr(layers, "winograd_conv3x3", counted)
    return calls


def test_crs_uses_winograd_only_where_it_is_exact_and_pays(spy, monkeypatch):
    torch.manual_seed(0)
    plain = CRS(6, 8).eval()
    fast = copy.deepcopy(plain)
    set_winograd(fast, True)
    monkeypatch.setattr(CRS, "WINOGRAD_MIN_PIXELS", 16 * 16)
    big, small = torch.randn(2, 6, 16, 20), torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fast(big), plain(big), rtol=0, atol=1e-5)
        assert len(spy) == 1
        fast(small)  # below the size threshold
        with torch.autocast("cpu", torch.bfloat16):
            fast(big)  # autocast: the bf16 conv runs
    assert len(spy) == 1
    out = fast(big)  # autograd: the plain conv, bit for bit
    assert len(spy) == 1
    assert torch.equal(out, plain(big))
    out.sum().backward()
    assert fast.conv.weight.grad is not None


def test_fast_path_of_the_cpu_uses_winograd_and_keeps_outputs(spy, monkeypatch):
    """``--fast`` on CPU switches every CRS block to Winograd; fp32 logits stay within 1e-4 of eager."""
    assert FastPathOptions.best_for("cpu").winograd
    assert not FastPathOptions.best_for("cuda").winograd  # cuDNN chooses its own algorithms
    monkeypatch.setattr(CRS, "WINOGRAD_MIN_PIXELS", 1)  # the tiny model's maps are all small
    cfg = tiny_model_config(64)
    torch.manual_seed(0)
    model = build_model(cfg, with_depth_decoder=False).eval()
    x = make_inputs(2, cfg.input_size, torch.device("cpu"), seed=1)
    with torch.no_grad():
        ref = model(x["image"], x["depth"]).logits
    runner = FastInference(copy.deepcopy(model), "cpu", FastPathOptions.best_for("cpu"))
    out = runner(x["image"], x["depth"])
    blocks = [m for m in runner.model.modules() if isinstance(m, CRS)]
    assert len(blocks) > 10 and all(m.winograd for m in blocks)
    assert len(spy) >= len(blocks)  # every CRS of the inference path ran through it
    print(f"max |diff| {(out - ref).abs().max().item():.2e} (logit std {ref.std().item():.2f})")
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)


def test_crs_inference_path_is_bit_identical_in_place():
    """Under no_grad the CRS normalises and activates its conv output in place: same bits, fewer maps."""
    torch.manual_seed(0)
    block = CRS(6, 8).eval()
    x = torch.randn(2, 6, 9, 11)
    ref = block.act(block.norm(block.conv(x)))
    with torch.no_grad():
        out = block(x)
    assert torch.equal(out, ref.detach())
    with torch.autocast("cpu", torch.bfloat16), torch.no_grad():  # bf16: the out-of-place fp32 norm
        torch.testing.assert_close(block(x).float(), ref.detach(), rtol=0, atol=0.1)
