"""An exact, cheaper equivalent of the up-conv head's stem: bilinear ×4 upsample then Conv4×4/4.

The release computes ``conv2d(interpolate(x, 4·(H, W), bilinear, align_corners=True), W, stride=4)``
with a [O, 6, 4, 4] kernel: for a 1024² input it materialises a [B, 6, 4096, 4096] NCHW tensor
(384 MiB per image in fp32) and reads it back through a stride-4 convolution whose input has only
6 channels (a poor fit for implicit-GEMM / tensor-core kernels, which want channels innermost).

**Why no single conv with a derived kernel is exact here.** The op is linear and every output pixel
sees a 3×3 input neighbourhood, but with ``align_corners=True`` the upsampled row ``y = 4i + a``
samples the input at ``src(y) = y·(H−1)/(4H−1)``, i.e. at ``i + a·s − 3i/(4H−1)`` with
``s = (H−1)/(4H−1)``: the interpolation weights of phase a *drift with i* (by ¾ pixel across the
image). With ``align_corners=False`` the phases would be periodic and the whole op one 3×3 conv on
the un-upsampled input; here the derived 3×3 kernel is position dependent. What does hold is
separability: the 4×4 block of upsampled pixels above output pixel (i, j) is
``R_i · X[i−1:i+2, j−1:j+2] · C_jᵀ`` with 4×3 row/column interpolation matrices R_i, C_j.

**What this module does.** It applies those separable interpolations as two 1-D bilinear passes in a
layout chosen so that the stride-4 conv becomes a dense, channels-innermost one:

1. columns ×4 on the channels-last input → memory [B, H, W, 4(b), C];
2. rows ×4, treating the (W, b, C) block of each row as channels → memory [B, H, 4(a), W, 4(b)·C],
   which *is* the channels-last layout of a [B, 4C, 4H, W] image whose channels are the column phase
   and input channel (b, c);
3. one Conv(kernel (4, 1), stride (4, 1)) with Cin = 4C and the kernel ``W[o, c, a, b]`` re-indexed to
   ``[o, (b, c), a, 0]`` — an implicit GEMM with K = 16C, on channels-last data, with no layout
   conversion.

The two passes compute exactly what PyTorch's 2-D bilinear kernel computes (column lerp, then row
lerp of the results), so the upsampled values are the same numbers; the conv sums the same 16C
products (in a possibly different order). FLOPs equal the reference conv's; the gain is data movement
and kernel efficiency: no NCHW 4H×4W tensor, no NCHW→NHWC transform, no 6-channel strided conv.
Tested equal to the reference to 1e-5 (bit-identical on CPU in practice), values and gradients.

The result is [B, O, H, W] in ``channels_last`` memory format; values do not depend on layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["upsample4_conv_reference", "upsample4_conv_fast", "fold_replicated_channels"]


def upsample4_conv_reference(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """The release's op: bilinear ×4 (align_corners=True) then Conv2d(kernel 4, stride 4).

    Args:
        x: [B, C, H, W].
        weight: [O, C, 4, 4]; bias: [O] or None.

    Returns:
        [B, O, H, W].
    """
    h, w = x.shape[-2:]
    up = F.interpolate(x, size=(4 * h, 4 * w), mode="bilinear", align_corners=True)
    return F.conv2d(up, weight, bias, stride=4)


def upsample4_conv_fast(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact equivalent of :func:`upsample4_conv_reference` (see the module docstring).

    Args:
        x: [B, C, H, W], any memory format. As in the release, the resize runs in ``x``'s dtype and
            only the convolution follows autocast.
        weight: [O, C, 4, 4]; bias: [O] or None.

    Returns:
        [B, O, H, W] (``channels_last`` memory format), equal to the reference to float rounding.
    """
    b, c, h, w = x.shape
    o = weight.shape[0]
    if tuple(weight.shape[1:]) != (c, 4, 4):
        raise ValueError(f"weight must be [O, {c}, 4, 4] for a {c}-channel input, got {tuple(weight.shape)}")
    xcl = x.contiguous(memory_format=torch.channels_last)
    # 1. Columns: memory [B, H, 4W, C] = [B, H, W, 4(b), C].
    cols = F.interpolate(xcl, size=(h, 4 * w), mode="bilinear", align_corners=True)
    cols = cols.contiguous(memory_format=torch.channels_last)  # no-op when the kernel kept the layout
    # 2. Rows: view each row's (W, b, C) block as channels of a [B, 4WC, H, 1] channels-last image.
    rows_in = cols.permute(0, 2, 3, 1).reshape(b, h, 1, 4 * w * c).permute(0, 3, 1, 2)
    rows = F.interpolate(rows_in, size=(4 * h, 1), mode="bilinear", align_corners=True)
    rows = rows.contiguous(memory_format=torch.channels_last)
    # memory [B, 4H, 1, W·4C] = [B, H, 4(a), W, 4(b)·C]: channels-last [B, 4C, 4H, W].
    img = rows.permute(0, 2, 3, 1).reshape(b, 4 * h, w, 4 * c).permute(0, 3, 1, 2)
    # 3. Conv (4, 1)/(4, 1): kernel [o, c, a, b] → [o, (b, c), a, 1].
    k = weight.permute(0, 3, 1, 2).reshape(o, 4 * c, 4, 1)
    return F.conv2d(img, k, bias, stride=(4, 1))


def fold_replicated_channels(weight: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """Sum kernel slices over input channels that always carry the same values.

    PDFNet feeds the depth map replicated ×3 (channels 3, 4, 5 of the stem input are equal), so
    ``conv(cat[rgb, d, d, d], W) == conv(cat[rgb, d], fold(W, [[0], [1], [2], [3, 4, 5]]))`` — a
    4-channel stem instead of 6 (a third less resize and conv work), equal up to summation order.

    Args:
        weight: [O, C, kh, kw].
        groups: a partition of the C input channels; each group becomes one input channel.

    Returns:
        [O, len(groups), kh, kw].
    """
    flat = sorted(i for g in groups for i in g)
    if flat != list(range(weight.shape[1])):
        raise ValueError(f"groups {groups} must partition the {weight.shape[1]} input channels")
    return torch.stack([weight[:, g].sum(dim=1) for g in groups], dim=1)
