"""Small building blocks shared by the PDFNet modules (docs/architecture.md).

Everything here is layout-agnostic plain PyTorch: RMSNorm (channels-first and channels-last),
the CRS block (Conv3×3 → RMSNorm → SiLU), SwiGLU, the single-head cross-attention used by CoA
(scaled-dot-product attention, never a materialised score matrix), the model-wide bilinear resize
(``align_corners=True``) and the 8×8 tiling helpers (reshape/permute, no Python loops).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .winograd import winograd_conv3x3

__all__ = [
    "CRS",
    "RMSNorm",
    "RMSNorm2d",
    "SingleHeadCrossAttention",
    "SwiGLU",
    "resize",
    "resize_like",
    "tile",
    "untile",
]


def resize(x: torch.Tensor, size: tuple[int, int] | list[int]) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True`` (the release's ``_upsample_``), up or down.

    Args:
        x: [B, C, H, W].
        size: target (H', W').

    Returns:
        [B, C, H', W']; ``x`` itself when the size already matches (bilinear with
        align_corners=True is the identity then).
    """
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def resize_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """:func:`resize` ``x`` [B, C, H, W] to the spatial size of ``ref`` [*, *, H', W']."""
    return resize(x, ref.shape[-2:])


def tile(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Cut a square map into grid×grid non-overlapping tiles stacked on the batch axis.

    Args:
        x: [B, C, H, W] with H and W divisible by ``grid``.
        grid: tiles per side (8 in the paper).

    Returns:
        [grid²·B, C, H/grid, W/grid]; tile (row, col) of sample b sits at index (row·grid + col)·B + b,
        the release's order.
    """
    b, c, h, w = x.shape
    th, tw = h // grid, w // grid
    x = x.reshape(b, c, grid, th, grid, tw).permute(2, 4, 0, 1, 3, 5)
    return x.reshape(grid * grid * b, c, th, tw)


def untile(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Inverse of :func:`tile`: [grid²·B, C, h, w] → [B, C, grid·h, grid·w]."""
    n, c, h, w = x.shape
    b = n // (grid * grid)
    x = x.reshape(grid, grid, b, c, h, w).permute(2, 3, 0, 4, 1, 5)
    return x.reshape(b, c, grid * h, grid * w)


class RMSNorm2d(nn.Module):
    """RMSNorm over the channel axis of an NCHW map, computed in fp32: x·rsqrt(mean_c x² + eps)·w.

    Args:
        dim: number of channels C.
        eps: 1e-6 in the release.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] → [B, C, H, W] (same dtype)."""
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return self.weight[:, None, None] * y.to(x.dtype)

    def forward_(self, x: torch.Tensor) -> torch.Tensor:
        """In place on an fp32 ``x`` [B, C, H, W] that nothing else holds: bit-identical to :meth:`forward`,
        without its two full-size temporaries (inference; not for tensors autograd records)."""
        r = torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return x.mul_(r).mul_(self.weight[:, None, None])


class RMSNorm(nn.Module):
    """RMSNorm over the last axis (token sequences), computed in fp32.

    Args:
        dim: size of the last axis.
        eps: 1e-6 in the release.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., D] → [..., D] (same dtype)."""
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


class CRS(nn.Module):
    """Conv3×3 (pad 1, with bias) → RMSNorm over channels → SiLU (the release's ``make_crs``).

    Args:
        in_dim: input channels.
        out_dim: output channels.
        winograd: compute the convolution with Winograd F(4×4, 3×3) (:mod:`.winograd`) where that pays:
            fp32 without autocast, no autograd graph being recorded, maps of at least
            :attr:`WINOGRAD_MIN_PIXELS`. Otherwise (training, bf16, small maps) the plain conv runs.
            An inference fast path, also settable as an attribute.
    """

    #: Below this many output pixels per map the direct convolution is as fast (measured on CPU at 128²).
    WINOGRAD_MIN_PIXELS = 128 * 128

    def __init__(self, in_dim: int, out_dim: int, winograd: bool = False) -> None:
        super().__init__()
        self.winograd = winograd
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size=3, padding=1)
        self.norm = RMSNorm2d(out_dim)
        self.act = nn.SiLU()

    def _winograd_pays(self, x: torch.Tensor) -> bool:
        return (
            self.winograd
            and x.dtype == torch.float32
            and x.shape[-2] * x.shape[-1] >= self.WINOGRAD_MIN_PIXELS
            and not torch.is_autocast_enabled(x.device.type)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, in_dim, H, W] → [B, out_dim, H, W]."""
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters())):
            return self.act(self.norm(self.conv(x)))  # autograd records this block: the plain ops
        if self._winograd_pays(x):
            y = winograd_conv3x3(x, self.conv.weight, self.conv.bias)
        else:
            y = self.conv(x)
        if y.dtype != torch.float32:  # autocast: the norm computes in fp32 and casts back
            return self.act(self.norm(y))
        # inference: y is this block's own temporary, so norm and activation can overwrite it (the same
        # values, ~2 fewer full-size maps at the peak: 1 GB at 1024² in the up-conv head)
        return F.silu(self.norm.forward_(y), inplace=True)


class SwiGLU(nn.Module):
    """w2(SiLU(w1 x) ⊙ w3 x), bias-free (hidden width = input width in PDFNet).

    Args:
        dim: input/output width.
        hidden: hidden width.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., dim] → [..., dim]."""
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class SingleHeadCrossAttention(nn.Module):
    """One-head, bias-free attention equal to ``nn.MultiheadAttention(dim, 1, bias=False)``.

    The packed ``in_proj_weight`` holds the rows [W_q; W_k; W_v] (the MHA layout, so official weights
    copy over unchanged). Scores go through ``F.scaled_dot_product_attention`` (scale 1/√dim), which
    never materialises the Lq×Lk matrix on its fused paths (FSE₃ has 16384×16384 at 1024²).

    Args:
        dim: token width.
        dropout: attention-probability dropout, applied in training only.
    """

    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.out_proj = nn.Linear(dim, dim, bias=False)
        nn.init.xavier_uniform_(self.in_proj_weight)  # nn.MultiheadAttention's default init

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """q: [B, Lq, dim], kv: [B, Lk, dim] → [B, Lq, dim]."""
        wq, wk, wv = self.in_proj_weight.chunk(3, dim=0)
        qp = F.linear(q, wq).unsqueeze(1)  # [B, 1, Lq, D]
        kp = F.linear(kv, wk).unsqueeze(1)
        vp = F.linear(kv, wv).unsqueeze(1)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(qp, kp, vp, dropout_p=p)
        return self.out_proj(out.squeeze(1))
