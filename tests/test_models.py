"""Tiny-config tests of the PDFNet model: shapes, output type, gradients, size validation, variants."""

from __future__ import annotations

import time

import pytest
import torch
from helpers import tiny_model_config

from pdfnet.config.schema import ModelConfig
from pdfnet.models import PDFNet, PDFNetOutput, build_model
from pdfnet.models.fse import (
    BinaryPatchWeight,
    LinearPatchWeight,
    SoftBoundary,
    ThresholdBoundary,
    boundary_residual,
)
from pdfnet.models.layers import tile, untile

S = 256  # the demo size: shapes and the train step are checked here
SMALL = 128  # cheaper size for the behavioural checks


def tiny_cfg(**kw) -> ModelConfig:
    return tiny_model_config(SMALL, **kw)


@pytest.fixture(scope="module")
def tiny_model() -> PDFNet:
    torch.manual_seed(0)
    return build_model(tiny_cfg())


def _inputs(b: int = 1, s: int = S):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 3, s, s, generator=g), torch.rand(b, 1, s, s, generator=g)


def test_tiny_train_forward_backward_every_param_gets_grad(tiny_model):
    model = tiny_model.train()
    image, depth = _inputs(2)
    t0 = time.perf_counter()
    out = model(image, depth)
    assert isinstance(out, PDFNetOutput)
    assert out.logits.shape == (2, 1, S, S)
    assert [tuple(p.shape[-2:]) for p in out.side_logits] == [(64, 64), (32, 32), (16, 16), (8, 8), (8, 8)]
    assert out.depth_logits is not None  # always in training
    assert [tuple(q.shape[-2:]) for q in out.depth_logits] == [(128, 128), (32, 32), (16, 16), (8, 8), (4, 4)]
    loss = sum(o.float().square().mean() for o in (*out.all_logits, *out.depth_logits))
    model.zero_grad(set_to_none=True)
    loss.backward()
    elapsed = time.perf_counter() - t0
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:10]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad
    assert elapsed < 60, f"tiny forward/backward took {elapsed:.1f}s"


def test_eval_same_type_and_optional_depth_decoder(tiny_model):
    model = tiny_model.eval()
    image, depth = _inputs(1, SMALL)
    with torch.no_grad():
        out = model(image, depth)
        out_d = model(image, depth, with_depth_decoder=True)
    assert type(out) is PDFNetOutput and out.depth_logits is None
    assert out_d.depth_logits is not None and len(out_d.depth_logits) == 5
    torch.testing.assert_close(out.logits, out_d.logits)
    try:  # an explicit False is obeyed in training mode too (the default there runs it)
        model.train()
        with torch.no_grad():
            assert model(image, depth, with_depth_decoder=False).depth_logits is None
            assert model(image, depth).depth_logits is not None
    finally:
        model.eval()


def test_depth_affine_invariance_and_batch_minmax(tiny_model):
    """Depth is min–max normalised over the whole batch: an affine rescale of the input is absorbed."""
    model = tiny_model.eval()
    image, depth = _inputs(1, SMALL)
    with torch.no_grad():
        a = model(image, depth).logits
        b = model(image, 0.3 + 2.5 * depth).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_constant_depth_gives_finite_output(tiny_model):
    """The release divides by (max − min) unguarded; a flat depth map must not produce NaN here."""
    image, _ = _inputs(1, SMALL)
    with torch.no_grad():
        out = tiny_model.eval()(image, torch.full((1, 1, SMALL, SMALL), 0.5))
    assert torch.isfinite(out.logits).all()


def test_tile_untile_roundtrip_and_order():
    x = torch.arange(2 * 1 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    t = tile(x, 8)
    assert t.shape == (128, 1, 2, 2)
    # tile (row 1, col 2) of sample 1 is at index (1*8 + 2)*2 + 1
    torch.testing.assert_close(t[(1 * 8 + 2) * 2 + 1, 0], x[1, 0, 2:4, 4:6])
    torch.testing.assert_close(untile(t, 8), x)


@pytest.mark.parametrize("size", [(256, 512), (264, 264), (1000, 1000)])
def test_unsupported_sizes_raise(tiny_model, size):
    h, w = size
    with pytest.raises(ValueError):
        tiny_model.check_input_size((h, w))
    with pytest.raises(ValueError):
        tiny_model(torch.zeros(1, 3, h, w), torch.zeros(1, 1, h, w))


def test_config_size_validated_at_build():
    with pytest.raises(ValueError, match="multiple"):
        build_model(tiny_cfg(input_size=1000))


@pytest.mark.parametrize("variant", ["oct2025"])
def test_oct2025_variants_run(variant):
    model = build_model(
        tiny_cfg(
            bis_variant=variant,
            patch_weight_variant=variant,
            coa_norm_variant=variant,
            depth_decoder_variant=variant,
        )
    )
    image, depth = _inputs(1, SMALL)
    out = model.train()(image, depth)
    assert out.depth_logits is not None and out.logits.shape == (1, 1, SMALL, SMALL)


def test_grad_checkpointing_matches(tiny_model):
    model = tiny_model.eval()
    image, depth = _inputs(1, SMALL)
    model.zero_grad(set_to_none=True)
    model(image, depth).logits.sum().backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model.set_grad_checkpointing(True)
    try:
        model(image, depth).logits.sum().backward()
    finally:
        model.set_grad_checkpointing(False)
    for n, p in model.named_parameters():
        if n in ref:
            torch.testing.assert_close(p.grad, ref[n], rtol=1e-4, atol=1e-5)
    model.zero_grad(set_to_none=True)


def test_channels_last_input(tiny_model):
    model = tiny_model.eval()
    image, depth = _inputs(1, SMALL)
    with torch.no_grad():
        a = model(image, depth).logits
        cl = torch.channels_last
        b = model(image.to(memory_format=cl), depth.to(memory_format=cl)).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_timm_backbone_channels_from_feature_info():
    """``timm:<name>``: any 4-stage timm model via features_only; channels come from feature_info."""
    model = build_model(tiny_cfg(backbone="timm:resnet10t", input_size=S))
    bb = model.encoder.backbone
    assert bb.out_channels == (64, 128, 256, 512) and bb.input_multiple == 32
    image, depth = _inputs(1, S)
    out = model.train()(image, depth)
    assert out.logits.shape == (1, 1, S, S)
    assert [tuple(p.shape[-2:]) for p in out.side_logits] == [(64, 64), (32, 32), (16, 16), (8, 8), (8, 8)]
    out.logits.mean().backward()
    with pytest.raises(ValueError, match="multiple of 256"):
        model.check_input_size(128)  # 8 tiles of 16 px cannot feed a stride-32 backbone


def test_unknown_backbone_raises():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_model(tiny_cfg(backbone="swin_huge"))


def _reference_swin_block(blk, x, hw, mask):
    """The release's block, written plainly: pad after norm1, roll, full window attention with an
    explicit softmax over all (padded) tokens, un-roll, crop, proj, MLP."""
    import torch.nn.functional as F

    H, W = hw
    B, L, C = x.shape
    w, s, a = blk.window, blk.shift, blk.attn
    y = blk.norm1(x).reshape(B, H, W, C)
    y = F.pad(y, (0, 0, 0, (-W) % w, 0, (-H) % w))
    Hp, Wp = y.shape[1:3]
    if s:
        y = torch.roll(y, (-s, -s), (1, 2))
    win = y.reshape(B, Hp // w, w, Wp // w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, w * w, C)
    nh = a.num_heads
    qkv = a.qkv(win).reshape(win.shape[0], w * w, 3, nh, C // nh).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * (C // nh) ** -0.5, qkv[1], qkv[2]
    att = q @ k.transpose(-2, -1) + a.position_bias().unsqueeze(0)
    if s:
        nw = mask.shape[0]
        att = (att.reshape(-1, nw, nh, w * w, w * w) + mask[None, :, None]).reshape(-1, nh, w * w, w * w)
    out = (att.softmax(-1) @ v).transpose(1, 2).reshape(-1, w * w, C)
    out = a.proj(out).reshape(B, Hp // w, Wp // w, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, C)
    if s:
        out = torch.roll(out, (s, s), (1, 2))
    x = x + out[:, :H, :W].reshape(B, L, C)
    return x + blk.mlp(blk.norm2(x))


@pytest.mark.parametrize("hw", [(5, 5), (3, 3), (8, 8), (2, 7), (1, 1)])
@pytest.mark.parametrize("shift", [0, 2])
def test_swin_block_matches_plain_padded_reference(hw, shift):
    """The optimised block (no projection of padding, real-token queries for one-window maps) equals
    the plain padded computation: multi-window + padding, one window, no padding, non-square."""
    from pdfnet.models.swin import SwinBlock, _device_const

    torch.manual_seed(0)
    blk = SwinBlock(8, 2, window=4, shift=shift).eval()
    with torch.no_grad():
        for p in blk.parameters():
            p.add_(0.3 * torch.randn_like(p))  # non-trivial biases and bias table
    H, W = hw
    x = torch.randn(2, H * W, 8)
    hp, wp = -(-H // 4) * 4, -(-W // 4) * 4
    mask = _device_const("mask", (hp, wp, 4, 2), x.device) if shift else None
    with torch.no_grad():
        ours = blk(x, hw, mask)
        ref = _reference_swin_block(blk, x, hw, mask)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_release_behaviours_are_parts_chosen_by_the_factory():
    """The config's release names map onto behaviour-named parts; forward has no release branches."""
    pred = torch.randn(2, 1, 16, 16) * 3
    sig, r, k = boundary_residual(pred)
    b, m = SoftBoundary()(pred)
    torch.testing.assert_close(b, 2 * r)
    torch.testing.assert_close(m, torch.relu(sig - 10 * r))
    b, m = ThresholdBoundary()(pred)  # k = 2 (even): a hard threshold
    assert k == 2 and torch.equal(b, (r > 0.1).float()) and torch.equal(m, torch.relu(sig - b))
    pred24 = torch.randn(1, 1, 24, 24)
    torch.testing.assert_close(ThresholdBoundary()(pred24)[0], boundary_residual(pred24)[1])  # k = 3: r
    score = torch.tensor([0.0, 0.2, 1e-4])
    torch.testing.assert_close(LinearPatchWeight()(score), torch.tensor([1.0, 2.0, 1.0005]))
    torch.testing.assert_close(BinaryPatchWeight()(score), torch.tensor([1.0, 2.0, 2.0]))

    march, octo = build_model(tiny_cfg()), build_model(tiny_cfg(
        bis_variant="oct2025", patch_weight_variant="oct2025", coa_norm_variant="oct2025",
        depth_decoder_variant="oct2025"))
    for model, boundary, weight, drop_first, fusion, stem in (
            (march, SoftBoundary, LinearPatchWeight, True, "sum", 3),
            (octo, ThresholdBoundary, BinaryPatchWeight, False, "concat", 6)):
        fse = model.decoder.fse[0]
        assert isinstance(fse.boundary, boundary) and isinstance(fse.patch_weight, weight)
        assert fse.coa_pi.dropout_before_norm is drop_first
        assert model.depth_decoder.level_fusion == fusion and model.depth_decoder.stem.in_channels == stem
    assert march.state_dict().keys() == octo.state_dict().keys()  # parts hold no parameters
