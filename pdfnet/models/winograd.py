"""Winograd F(4×4, 3×3): the 3×3, stride-1, zero-padded-by-1 convolution with 4× fewer multiplications.

The CPU inference fast path for the model's CRS convolutions (docs/benchmarks.md): at 1024² two of them
run at full resolution (128 → 128 channels, 309 GFLOP each, ~27 % of the forward's FLOPs), and on a CPU
that already runs direct convolution at its peak, doing less arithmetic is the only way to go faster in
fp32. cuDNN picks Winograd-like algorithms by itself; oneDNN does not on most CPUs.

The algorithm (Lavin & Gray, 2016) cuts the padded input into overlapping 6×6 tiles with stride 4; each
tile and each 3×3 kernel go to a 6×6 "Winograd domain" (d → Bᵀ d B, g → G g Gᵀ), where the convolution
becomes 36 independent channel matrix products (per tile position: [tiles, C_in] @ [C_in, C_out]), and
the 4×4 output block comes back with Aᵀ m A. Per output pixel: 36·C_in·C_out / 16 multiply-adds instead
of 9·C_in·C_out. The transforms are small matrix products over the 6-point axes, done on row bands of
tiles so the intermediates stay small (a few MB at 1024²) instead of 2.25× the input.

Numerics: the transforms use the points 0, ±1, ±2 and coefficients up to 8, so fp32 results differ from
direct convolution by a few 1e-6 relative (measured ≤ 1.5e-5 of the output's max on 128-channel
layers) — the up-conv head's parity with the release stays within 1e-4 (tests/test_winograd.py,
tests/test_fastpath_parity.py). Inference only: no autograd-friendly formulation is attempted.
"""

from __future__ import annotations

import torch

__all__ = ["winograd_conv3x3", "winograd_weight"]

# F(4×4, 3×3) with interpolation points 0, ±1, ±2, ∞ (float64; cast to the input dtype when used).
_BT = torch.tensor(
    [[4, 0, -5, 0, 1, 0],
     [0, -4, -4, 1, 1, 0],
     [0, 4, -4, -1, 1, 0],
     [0, -2, -1, 2, 1, 0],
     [0, 2, -1, -2, 1, 0],
     [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
_G = torch.tensor(
    [[1 / 4, 0, 0],
     [-1 / 6, -1 / 6, -1 / 6],
     [-1 / 6, 1 / 6, -1 / 6],
     [1 / 24, 1 / 12, 1 / 6],
     [1 / 24, -1 / 12, 1 / 6],
     [0, 0, 1]], dtype=torch.float64)
_AT = torch.tensor(
    [[1, 1, 1, 1, 1, 0],
     [0, 1, -1, 2, -2, 0],
     [0, 1, 1, 4, 4, 0],
     [0, 1, -1, 8, -8, 1]], dtype=torch.float64)
_M, _A = 4, 6  # output tile side, input tile side (M + 3 − 1)


def winograd_weight(weight: torch.Tensor) -> torch.Tensor:
    """Kernels in the Winograd domain: [C_out, C_in, 3, 3] → [36, C_in, C_out] (G g Gᵀ, in float64)."""
    if weight.ndim != 4 or weight.shape[-2:] != (3, 3):
        raise ValueError(f"weight must be [C_out, C_in, 3, 3], got {tuple(weight.shape)}")
    g = _G.to(weight.device)
    u = torch.einsum("ai,ocij,bj->abco", g, weight.detach().double(), g)
    return u.reshape(_A * _A, weight.shape[1], weight.shape[0]).to(weight.dtype)


def winograd_conv3x3(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    tile_rows: int = 2,
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` computed with Winograd F(4×4, 3×3).

    Args:
        x: [B, C_in, H, W], any memory layout, float32 or float64.
        weight: [C_out, C_in, 3, 3].
        bias: [C_out] or None.
        tile_rows: rows of 4×4 output tiles per band (the intermediates hold 36 × tile_rows × ⌈W/4⌉ × C).

    Returns:
        [B, C_out, H, W] in channels_last memory format (the natural layout of the channel products).
    """
    if x.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must be [B, {weight.shape[1]}, H, W], got {tuple(x.shape)}")
    if tile_rows < 1:
        raise ValueError(f"tile_rows must be >= 1, got {tile_rows}")
    b, c, h, w = x.shape
    o = weight.shape[0]
    dt, dev = x.dtype, x.device
    bt, at = _BT.to(dev, dt), _AT.to(dev, dt)
    u = winograd_weight(weight.to(dt))  # [36, C, O]
    # M[1, 1] feeds every output pixel with coefficient 1 (row 1 of Aᵀ is all ones), so the bias rides
    # along in the batched product instead of costing a pass over the output.
    add = x.new_zeros(_A * _A, 1, o)
    if bias is not None:
        add[_A + 1, 0] = bias.to(dt)

    nh, nw = -(-h // _M), -(-w // _M)
    hp, wp = _M * nh + 2, _M * nw + 2
    xp = x.new_empty(b, hp, wp, c)  # zero-padded NHWC input: only the border is zeroed
    xp[:, 0].zero_()
    xp[:, h + 1:].zero_()
    xp[:, :, 0].zero_()
    xp[:, :, w + 1:].zero_()
    xp[:, 1:h + 1, 1:w + 1] = x.permute(0, 2, 3, 1)
    out = x.new_empty(b, nh, _M, nw, _M, o)
    _, sh, sw, sc = xp.stride()
    for i in range(b):
        for r0 in range(0, nh, tile_rows):
            n = min(tile_rows, nh - r0)
            tiles = n * nw
            band = xp[i, _M * r0:]
            # d[j, l, t, c] = xp[4·row + j, 4·col + l, c] for the tiles t of the band: [6, 6·T·C]
            d = band.as_strided((_A, _A, n, nw, c), (sh, sw, _M * sh, _M * sw, sc)).reshape(_A, -1)
            v = torch.matmul(bt, (bt @ d).view(_A, _A, tiles * c)).view(_A * _A, tiles, c)  # Bᵀ d B
            m = torch.baddbmm(add, v, u)  # [36, T, O]
            y = torch.matmul(at, (at @ m.view(_A, -1)).view(_M, _A, tiles * o))  # Aᵀ m A: [4, 4, T·O]
            out[i, r0:r0 + n] = y.view(_M, _M, n, nw, o).permute(2, 0, 3, 1, 4)
    out = out.view(b, _M * nh, _M * nw, o)
    if (_M * nh, _M * nw) != (h, w):
        out = out[:, :h, :w].contiguous()
    return out.permute(0, 3, 1, 2)
