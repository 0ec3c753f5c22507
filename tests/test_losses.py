"""Unit tests for pdfnet.losses: a literal per-output reference, edge cases, variants, autocast."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F

from pdfnet.config.schema import LossConfig
from pdfnet.losses import (
    PDFNetLoss,
    edge_weight,
    gaussian_window,
    object_mean_depth,
    pdfnet_loss,
    ssim_terms,
    structure_terms,
)
from pdfnet.utils.normalize import minmax_normalize

S = 64


# ----------------------------------------------------------------------------- helpers
def _out(b: int = 2, s: int = S, scale: float = 1.0, depth: bool = True, seed: int = 0):
    """A fake PDFNet output: P0 at s, P1..P5 at s/4, s/8, s/16, s/32, s/32; Q0..Q4 at s/2 .. s/32."""
    g = torch.Generator().manual_seed(seed)
    r = lambda n: scale * torch.randn(b, 1, n, n, generator=g)  # noqa: E731
    return types.SimpleNamespace(
        logits=r(s),
        side_logits=(r(s // 4), r(s // 8), r(s // 16), r(s // 32), r(s // 32)),
        depth_logits=(r(s // 2), r(s // 8), r(s // 16), r(s // 32), r(s // 32)) if depth else None,
    )


def _targets(b: int = 2, s: int = S, seed: int = 1):
    """A blob GT (one ellipse per sample, different places) and a raw depth target per sample."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, s), torch.linspace(0, 1, s), indexing="ij")
    gts, depths = [], []
    for i in range(b):
        cx, cy = 0.3 + 0.4 * torch.rand(2, generator=g)
        m = (((xx - cx) / 0.2) ** 2 + ((yy - cy) / 0.15) ** 2 <= 1).float()
        gts.append(m)
        depths.append(40.0 * (i + 1) + 100.0 * m + 30.0 * torch.rand(s, s, generator=g))  # raw, not [0,1]
    return torch.stack(gts)[:, None], torch.stack(depths)[:, None]


def _reference_loss(out, gt, depth_raw, iou_smooth=1.0):
    """Literal transcription of the release's loss formulas (one output at a time, 2-D kernels, batch μ and
    min–max)."""
    size = gt.shape[-2:]
    up = lambda x: F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # noqa: E731
    d = (depth_raw - depth_raw.min()) / (depth_raw.max() - depth_raw.min())
    weit = 1 + 5 * torch.abs(F.avg_pool2d(gt, kernel_size=31, stride=1, padding=15) - gt)
    g1 = torch.tensor([math.exp(-((x - 5) ** 2) / (2 * 1.5**2)) for x in range(11)])
    g1 = g1 / g1.sum()
    win = (g1[:, None] @ g1[None, :])[None, None]
    sob_x = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])[None, None]
    sob_y = sob_x.transpose(-1, -2)

    def struct(p):
        wbce = F.binary_cross_entropy_with_logits(p, gt, reduction="none")
        wbce = (weit * wbce).sum((2, 3)) / weit.sum((2, 3))
        q = torch.sigmoid(p)
        inter = (q * gt * weit).sum((2, 3))
        union = ((q + gt) * weit).sum((2, 3))
        wiou = 1 - (inter + iou_smooth) / (union - inter + iou_smooth)
        return (wbce + wiou).mean()

    def ssim(a, b):
        mu1, mu2 = F.conv2d(a, win, padding=5), F.conv2d(b, win, padding=5)
        s11 = F.conv2d(a * a, win, padding=5) - mu1**2
        s22 = F.conv2d(b * b, win, padding=5) - mu2**2
        s12 = F.conv2d(a * b, win, padding=5) - mu1 * mu2
        c1, c2 = 0.01**2, 0.03**2
        m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
        return 1 - (1 + m.mean()) / 2

    def inte(p):
        py = gt * p + (1 - gt) * (1 - p)
        fp, fn = (1 - py) * p, (1 - py) * gt
        ell = -torch.log(py + 1e-8)
        mu = (d * gt).sum() / gt.sum()
        delta = (d - mu) ** 2
        lv = (ell * py * (delta * fp + (1 - delta) * fn)).mean()
        lg = (ell * (F.conv2d(d, sob_x, padding=1).abs() + F.conv2d(d, sob_y, padding=1).abs())).mean()
        return lv + lg

    def silog(q):
        delta = torch.log(d + 1e-6) - torch.log(q + 1e-6)
        return torch.sqrt((delta**2).mean() - 0.5 * delta.mean() ** 2 + 1e-6)

    mask = [out.logits, *out.side_logits]
    seg = sum((1 if i == 0 else 0.5) * (struct(up(p)) + 0.5 * ssim(torch.sigmoid(up(p)), gt))
              for i, p in enumerate(mask))
    it = sum((1 if i == 0 else 0.5) * inte(torch.sigmoid(up(p))) for i, p in enumerate(mask))
    dp = sum((1 if j == 0 else 0.5) * silog(torch.sigmoid(up(q))) for j, q in enumerate(out.depth_logits))
    return seg + it / 2 + dp / 10


# ----------------------------------------------------------------------------- reference / kernels
def test_matches_literal_reference_batch2():
    """B = 2 with batch-coupled μ and min–max (the fixture only has B = 1)."""
    out = _out(b=2)
    gt, depth = _targets(b=2)
    total, terms = pdfnet_loss(out, gt, depth)
    ref = _reference_loss(out, gt, depth)
    torch.testing.assert_close(total, ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(terms["total"], total.detach())


def test_oct2025_iou_smooth_matches_reference():
    out = _out(b=2)
    gt, depth = _targets(b=2)
    total, _ = pdfnet_loss(out, gt, depth, iou_smooth=1e-6)
    torch.testing.assert_close(total, _reference_loss(out, gt, depth, iou_smooth=1e-6), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(total, pdfnet_loss(out, gt, depth)[0], rtol=1e-5, atol=1e-5)


def test_edge_weight_separable_equals_31x31_avg_pool():
    gt = (torch.rand(2, 1, 50, 70) > 0.6).float() * torch.rand(2, 1, 50, 70)
    ref = 1 + 5 * (F.avg_pool2d(gt, 31, stride=1, padding=15, count_include_pad=True) - gt).abs()
    torch.testing.assert_close(edge_weight(gt), ref, rtol=1e-6, atol=1e-6)


def test_ssim_separable_equals_2d_window():
    x, y = torch.rand(3, 1, 40, 40), (torch.rand(3, 1, 40, 40) > 0.5).float()
    g1 = gaussian_window()
    win = (g1[:, None] @ g1[None, :])[None, None]
    mu1, mu2 = F.conv2d(x, win, padding=5), F.conv2d(y, win, padding=5)
    s11 = F.conv2d(x * x, win, padding=5) - mu1**2
    s22 = F.conv2d(y * y, win, padding=5) - mu2**2
    s12 = F.conv2d(x * y, win, padding=5) - mu1 * mu2
    m = ((2 * mu1 * mu2 + 1e-4) * (2 * s12 + 9e-4)) / ((mu1**2 + mu2**2 + 1e-4) * (s11 + s22 + 9e-4))
    torch.testing.assert_close(ssim_terms(x, y, g1), (1 - m.mean()) / 2, rtol=1e-6, atol=1e-6)
    # stacked leading dim gives one value per output
    stacked = ssim_terms(torch.stack([x, y]), y, g1)
    assert stacked.shape == (2,)
    torch.testing.assert_close(stacked[0], (1 - m.mean()) / 2, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- sanity
def test_perfect_prediction_gives_near_zero_iou_ssim_integrity():
    gt, depth = _targets(b=2)
    logit = (2 * gt - 1) * 50.0
    out = types.SimpleNamespace(logits=logit, side_logits=(), depth_logits=None)
    _, terms = pdfnet_loss(out, gt, depth)
    assert terms["wiou_0"].abs() < 1e-6
    assert terms["ssim_0"].abs() < 1e-6
    assert terms["wbce_0"] < 1e-6
    assert terms["lv_0"].abs() < 1e-6 and terms["lg_0"].abs() < 1e-6


def test_bce_equals_torch_when_weights_are_one():
    logits = 3 * torch.randn(2, 1, S, S)
    gt = (torch.rand(2, 1, S, S) > 0.5).float()
    wbce, _ = structure_terms(logits, gt, torch.ones_like(gt))
    torch.testing.assert_close(wbce, F.binary_cross_entropy_with_logits(logits, gt), rtol=1e-6, atol=1e-6)
    # an all-background GT has w ≡ 1 by construction
    zeros = torch.zeros(2, 1, S, S)
    assert torch.equal(edge_weight(zeros), torch.ones_like(zeros))
    wbce0, _ = structure_terms(logits, zeros)
    torch.testing.assert_close(wbce0, F.binary_cross_entropy_with_logits(logits, zeros), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sign", [1.0, -1.0, 0.0])
def test_finite_grads_at_extreme_logits(sign):
    out = _out(b=2)
    gt, depth = _targets(b=2)
    leaves = [out.logits, *out.side_logits, *out.depth_logits]
    for t in leaves:
        with torch.no_grad():
            t.copy_(50.0 * (t.sign() if sign == 0 else torch.full_like(t, sign)))
        t.requires_grad_(True)
    total, terms = pdfnet_loss(out, gt, depth)
    total.backward()
    assert torch.isfinite(total)
    assert all(torch.isfinite(v) for v in terms.values())
    for t in leaves:
        assert t.grad is not None and torch.isfinite(t.grad).all()


# ----------------------------------------------------------------------------- interface
def test_terms_names_shapes_and_detachment():
    out = _out(b=2)
    for t in (out.logits, *out.side_logits, *out.depth_logits):
        t.requires_grad_(True)
    gt, depth = _targets(b=2)
    total, terms = pdfnet_loss(out, gt, depth)
    expected = {f"{n}_{i}" for n in ("struct", "wbce", "wiou", "ssim", "inte", "lv", "lg") for i in range(6)}
    expected |= {f"silog_{j}" for j in range(5)}
    expected |= {"target", "seg_total", "inte_total", "depth_total", "total"}
    assert set(terms) == expected
    for k, v in terms.items():
        assert v.dim() == 0 and v.dtype == torch.float32 and not v.requires_grad, k
    assert total.requires_grad and total.dim() == 0
    for i in range(6):
        torch.testing.assert_close(terms[f"struct_{i}"], terms[f"wbce_{i}"] + terms[f"wiou_{i}"])
        torch.testing.assert_close(terms[f"inte_{i}"], terms[f"lv_{i}"] + terms[f"lg_{i}"])
    torch.testing.assert_close(terms["target"], terms["struct_0"] + 0.5 * terms["ssim_0"])
    torch.testing.assert_close(
        terms["total"], terms["seg_total"] + 0.5 * terms["inte_total"] + 0.1 * terms["depth_total"]
    )


def test_without_depth_logits_silog_is_skipped():
    out = _out(b=2, depth=False)
    gt, depth = _targets(b=2)
    total, terms = pdfnet_loss(out, gt, depth)
    assert not any(k.startswith("silog_") for k in terms)
    assert terms["depth_total"] == 0
    torch.testing.assert_close(total, terms["seg_total"] + 0.5 * terms["inte_total"])


def test_config_and_kwargs():
    out = _out(b=1)
    gt, depth = _targets(b=1)
    a, _ = PDFNetLoss(LossConfig(silog_weight=0.0))(out, gt, depth)
    b, tb = PDFNetLoss(silog_weight=0.0)(out, gt, depth)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(b, tb["seg_total"] + 0.5 * tb["inte_total"])
    with pytest.raises(TypeError, match="unknown loss option"):
        PDFNetLoss(side_weights=0.3)
    with pytest.raises(ValueError, match="integrity_mean"):
        PDFNetLoss(integrity_mean="sample")
    with pytest.raises(ValueError, match="must match gt"):
        pdfnet_loss(out, gt, depth[..., :-1])


# ----------------------------------------------------------------------------- variants and edge cases
def test_per_sample_variants_equal_batch_at_b1_and_differ_at_b2():
    out1, (gt1, d1) = _out(b=1), _targets(b=1)
    base1 = pdfnet_loss(out1, gt1, d1)[1]
    for opts in ({"integrity_mean": "per_sample"}, {"depth_target_norm": "per_sample"}):
        t1 = pdfnet_loss(out1, gt1, d1, **opts)[1]
        for k in base1:
            torch.testing.assert_close(t1[k], base1[k], rtol=0, atol=1e-7)
    out2, (gt2, d2) = _out(b=2), _targets(b=2)  # sample 1's depth is offset and its object elsewhere
    base2 = pdfnet_loss(out2, gt2, d2)[1]
    mean_ps = pdfnet_loss(out2, gt2, d2, integrity_mean="per_sample")[1]
    norm_ps = pdfnet_loss(out2, gt2, d2, depth_target_norm="per_sample")[1]
    assert not torch.allclose(mean_ps["lv_0"], base2["lv_0"], rtol=1e-4)
    torch.testing.assert_close(mean_ps["lg_0"], base2["lg_0"])  # μ does not enter l_g
    assert not torch.allclose(norm_ps["silog_0"], base2["silog_0"], rtol=1e-4)
    assert not torch.allclose(norm_ps["lg_0"], base2["lg_0"], rtol=1e-4)


def test_minmax_and_object_mean_modes():
    d = torch.stack([torch.full((1, 4, 4), 2.0), torch.full((1, 4, 4), 6.0)])
    d[0, 0, 0, 0], d[1, 0, 0, 0] = 0.0, 10.0
    nb, ns = minmax_normalize(d, "batch"), minmax_normalize(d, "per_sample")
    assert nb.min() == 0 and nb.max() == 1 and nb[0].max() == pytest.approx(0.2)
    assert ns[0].min() == 0 and ns[0].max() == 1 and ns[1].min() == 0 and ns[1].max() == 1
    assert torch.equal(minmax_normalize(torch.full((2, 1, 3, 3), 0.7)), torch.zeros(2, 1, 3, 3))
    g = torch.zeros(2, 1, 4, 4)
    g[0, 0, 1, 1] = 1.0
    assert object_mean_depth(nb, g, "batch") == nb[0, 0, 1, 1]
    per = object_mean_depth(nb, g, "per_sample")
    assert per.shape == (2, 1, 1, 1) and per[0].item() == nb[0, 0, 1, 1] and per[1].item() == 0.0
    assert object_mean_depth(nb, torch.zeros_like(g), "batch") == 0.0  # release: 0/0 = NaN


@pytest.mark.parametrize("mode", ["batch", "per_sample"])
def test_empty_gt_and_constant_depth_are_finite(mode):
    out = _out(b=2)
    for t in (out.logits, *out.side_logits, *out.depth_logits):
        t.requires_grad_(True)
    gt, depth = _targets(b=2)
    gt[1] = 0.0  # one empty sample
    for g, d in ((gt, depth), (torch.zeros_like(gt), depth), (gt, torch.full_like(depth, 3.0))):
        total, terms = pdfnet_loss(out, g, d, integrity_mean=mode, depth_target_norm=mode)
        total.backward()
        assert torch.isfinite(total) and all(torch.isfinite(v) for v in terms.values())
        assert torch.isfinite(out.logits.grad).all()


def test_cpu_bf16_autocast_with_bf16_logits():
    out = _out(b=2)
    out = types.SimpleNamespace(
        logits=out.logits.bfloat16().requires_grad_(True),
        side_logits=tuple(t.bfloat16() for t in out.side_logits),
        depth_logits=tuple(t.bfloat16() for t in out.depth_logits),
    )
    gt, depth = _targets(b=2)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        total, terms = pdfnet_loss(out, gt.bfloat16(), depth.bfloat16())
    assert total.dtype == torch.float32 and torch.isfinite(total)
    assert all(v.dtype == torch.float32 for v in terms.values())
    total.backward()
    assert out.logits.grad is not None and out.logits.grad.dtype == torch.bfloat16
    assert torch.isfinite(out.logits.grad.float()).all()
