"""The up-conv head's fast stem equals bilinear ×4 (align_corners=True) + Conv4×4/4 to 1e-5."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pdfnet.models.upconv import fold_replicated_channels, upsample4_conv_fast, upsample4_conv_reference


@pytest.mark.parametrize(
    "shape",
    [(1, 6, 8, 8), (2, 6, 5, 7), (1, 3, 1, 1), (1, 6, 1, 9), (3, 2, 33, 17), (1, 6, 64, 64)],
)
@pytest.mark.parametrize("bias", [True, False])
def test_fast_stem_equals_reference(shape, bias):
    x = torch.randn(*shape)
    w = torch.randn(16, shape[1], 4, 4) / 4
    b = torch.randn(16) if bias else None
    ref = upsample4_conv_reference(x, w, b)
    out = upsample4_conv_fast(x, w, b)
    assert out.shape == ref.shape == (shape[0], 16, shape[2], shape[3])
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_reference_is_the_release_op():
    # The reference really is interpolate ×4 + stride-4 conv (guards the test's premise).
    x = torch.randn(1, 6, 6, 6)
    conv = torch.nn.Conv2d(6, 8, 4, stride=4)
    up = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=True)
    torch.testing.assert_close(upsample4_conv_reference(x, conv.weight, conv.bias), conv(up))


def test_no_shift_invariant_kernel_exists():
    # Documented claim: with align_corners=True the derived 3×3 kernel drifts with position, so an
    # impulse at two different positions gives different responses (unlike align_corners=False).
    w = torch.randn(1, 1, 4, 4)
    n = 31
    resp = []
    for pos in (3, 27):
        x = torch.zeros(1, 1, n, n)
        x[0, 0, pos, pos] = 1.0
        y = upsample4_conv_reference(x, w)[0, 0]
        resp.append(y[pos - 1 : pos + 2, pos - 1 : pos + 2])
    assert (resp[0] - resp[1]).abs().max() > 1e-3


def test_input_layouts_and_noncontiguous():
    x = torch.randn(2, 6, 40, 24)
    w = torch.randn(8, 6, 4, 4)
    ref = upsample4_conv_reference(x, w)
    torch.testing.assert_close(upsample4_conv_fast(x.contiguous(memory_format=torch.channels_last), w), ref,
                               rtol=0, atol=1e-5)
    xt = x.transpose(2, 3).contiguous().transpose(2, 3)  # same values, odd strides
    torch.testing.assert_close(upsample4_conv_fast(xt, w), ref, rtol=0, atol=1e-5)


def test_gradients_match():
    x = torch.randn(2, 6, 12, 12, requires_grad=True)
    w = torch.randn(8, 6, 4, 4, requires_grad=True)
    b = torch.randn(8, requires_grad=True)
    g = torch.randn(2, 8, 12, 12)
    grads = []
    for fn in (upsample4_conv_reference, upsample4_conv_fast):
        (fn(x, w, b) * g).sum().backward()
        grads.append([t.grad.clone() for t in (x, w, b)])
        for t in (x, w, b):
            t.grad = None
    for a, r in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-4)


def test_bf16_autocast_close():
    x = torch.randn(1, 6, 32, 32)
    w = torch.randn(16, 6, 4, 4) / 4
    ref = upsample4_conv_reference(x, w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = upsample4_conv_fast(x, w)
        ref16 = upsample4_conv_reference(x, w)
    assert out.dtype == ref16.dtype == torch.bfloat16
    # bf16 rounding of the same products: both are within bf16 noise of the fp32 result.
    torch.testing.assert_close(out.float(), ref, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(out.float(), ref16.float(), rtol=2e-2, atol=2e-2)


def test_fold_replicated_depth_channels():
    rgb, d = torch.randn(2, 3, 16, 16), torch.randn(2, 1, 16, 16)
    x6 = torch.cat([rgb, d.expand(-1, 3, -1, -1)], dim=1)
    w = torch.randn(8, 6, 4, 4)
    w4 = fold_replicated_channels(w, [[0], [1], [2], [3, 4, 5]])
    ref = upsample4_conv_reference(x6, w)
    torch.testing.assert_close(upsample4_conv_fast(torch.cat([rgb, d], 1), w4), ref, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="partition"):
        fold_replicated_channels(w, [[0, 1], [3]])


def test_bad_weight_shape():
    with pytest.raises(ValueError, match="weight must be"):
        upsample4_conv_fast(torch.randn(1, 6, 4, 4), torch.randn(8, 6, 3, 3))
