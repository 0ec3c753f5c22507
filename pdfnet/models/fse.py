"""FSE: fine-grained semantic enhancement (the release's ``FSE``): BIS, foreground gating, patch
re-weighting over the grid×grid blocks and four CoA cross-attention blocks.

Variants (docs/differences.md), March-2025 = the released checkpoint:

* ``bis_variant``: march2025 → b = 2r, integrity = ReLU(σ(P) − 5b);
  oct2025 → b = 1[r > 0.1] if (H_P // 8) is even else r, integrity = ReLU(σ(P) − b).
* ``patch_weight_variant``: march2025 → block k × (1 + 5·s_k); oct2025 → × (1 + 1[s_k > 0]).
* ``coa_norm_variant``: march2025 → x + Norm(Drop(Attn)); oct2025 → x + Drop(Norm(Attn))
  (identical in eval).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CRS, RMSNorm, SingleHeadCrossAttention, SwiGLU, resize, resize_like

__all__ = ["CoA", "FSE", "boundary_integrity"]

Variant = Literal["march2025", "oct2025"]


class CoA(nn.Module):
    """Cross-attention block: x = q + N1(Attn(q, kv)); y = x + N2(SwiGLU(x)) (post-norm on the branch).

    Args:
        emb: token width.
        dropout: attention and branch dropout (0.1 in the release; training only).
        norm_variant: ``march2025`` Norm(Dropout(·)) or ``oct2025`` Dropout(Norm(·)).
    """

    def __init__(self, emb: int, *, dropout: float = 0.1, norm_variant: Variant = "march2025") -> None:
        super().__init__()
        self.attn = SingleHeadCrossAttention(emb, dropout)
        self.norm1 = RMSNorm(emb)
        self.ffn = SwiGLU(emb, emb)
        self.norm2 = RMSNorm(emb)
        self.drop = nn.Dropout(dropout)
        self.norm_variant = norm_variant

    def _branch(self, y: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return norm(self.drop(y)) if self.norm_variant == "march2025" else self.drop(norm(y))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """q: [B, Lq, emb], kv: [B, Lk, emb] → [B, Lq, emb]."""
        x = q + self._branch(self.attn(q, kv), self.norm1)
        return x + self._branch(self.ffn(x), self.norm2)


def boundary_integrity(
    pred: torch.Tensor, variant: Variant = "march2025"
) -> tuple[torch.Tensor, torch.Tensor]:
    """BIS: boundary and integrity maps from the previous logits.

    s = σ(σ(P)) (the release's double sigmoid); A = AvgPool(s), kernel k+1 (k even) or k (k odd),
    k = H//8, stride 1, padding k//2, zero padding counted; r = |s − A|.

    Args:
        pred: logits P [B, 1, H, W].
        variant: see module docstring.

    Returns:
        (boundary b, integrity m), both [B, 1, H, W].
    """
    k = pred.shape[-2] // 8
    kw = pred.shape[-1] // 8
    sig = pred.sigmoid()
    s = sig.sigmoid()
    ksize = (k + 1, kw + 1) if k % 2 == 0 else (k, kw)
    r = (s - F.avg_pool2d(s, kernel_size=ksize, stride=1, padding=(k // 2, kw // 2))).abs()
    if variant == "march2025":
        b = 2 * r
        return b, F.relu(sig - 5 * b)
    b = (r > 0.1).to(r.dtype) if k % 2 == 0 else r
    return b, F.relu(sig - b)


class FSE(nn.Module):
    """One FSE step of the mask decoder.

    Args:
        img_dim, depth_dim, patch_dim: input channels of X_i, X_d, X_p (2·emb in PDFNet).
        emb: token width.
        pool_ratio: (p_i, p_d, p_p) average-pool factors of the key/value tokens.
        patch_ratio: grid of the patch re-weighting (8).
        dropout: CoA dropout.
        bis_variant, patch_weight_variant, coa_norm_variant: see module docstring.
    """

    def __init__(
        self,
        img_dim: int,
        depth_dim: int,
        patch_dim: int,
        emb: int,
        *,
        pool_ratio: Sequence[int] = (1, 1, 1),
        patch_ratio: int = 8,
        dropout: float = 0.1,
        bis_variant: Variant = "march2025",
        patch_weight_variant: Variant = "march2025",
        coa_norm_variant: Variant = "march2025",
    ) -> None:
        super().__init__()
        self.pool_ratio = tuple(int(p) for p in pool_ratio)
        self.patch_ratio = patch_ratio
        self.bis_variant = bis_variant
        self.patch_weight_variant = patch_weight_variant
        self.img_proj = CRS(img_dim, emb)
        self.depth_proj = CRS(depth_dim, emb)
        self.patch_proj = CRS(patch_dim, emb)
        self.coa_pi = CoA(emb, dropout=dropout, norm_variant=coa_norm_variant)
        self.coa_ip = CoA(emb, dropout=dropout, norm_variant=coa_norm_variant)
        self.coa_di = CoA(emb, dropout=dropout, norm_variant=coa_norm_variant)
        self.coa_id = CoA(emb, dropout=dropout, norm_variant=coa_norm_variant)

    def _reweight_patches(self, patch: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        """Scale each of the grid² blocks of ``patch`` [B, C, Hp, Wp] by its mean boundary score."""
        g = self.patch_ratio
        b, c, hp, wp = patch.shape
        hb, wb = boundary.shape[-2:]
        score = boundary.reshape(b, 1, g, hb // g, g, wb // g).mean(dim=(3, 5))  # [B, 1, g, g]
        if self.patch_weight_variant == "march2025":
            weight = 1 + 5 * score
        else:
            weight = 1 + (score > 0).to(score.dtype)
        blocks = patch.reshape(b, c, g, hp // g, g, wp // g) * weight[:, :, :, None, :, None]
        return blocks.reshape(b, c, hp, wp)

    @staticmethod
    def _tokens(x: torch.Tensor, ratio: int) -> torch.Tensor:
        """[B, C, H, W] → pooled tokens [B, (H/r)(W/r), C]."""
        if ratio != 1:
            x = F.adaptive_avg_pool2d(x, (x.shape[-2] // ratio, x.shape[-1] // ratio))
        return x.flatten(2).transpose(1, 2)

    @staticmethod
    def _untoken(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """[B, h·w, C] → [B, C, h, w]."""
        return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], h, w)

    def forward(
        self, x_img: torch.Tensor, x_depth: torch.Tensor, x_patch: torch.Tensor, pred: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fuse the three streams guided by the previous logits.

        Args:
            x_img: [B, img_dim, h, h].
            x_depth: [B, depth_dim, h, h].
            x_patch: [B, patch_dim, 2h, 2h] (any size divisible by patch_ratio).
            pred: previous logits P [B, 1, hp, hp] (hp divisible by patch_ratio).

        Returns:
            (img_out [B, emb, h, h], depth_out [B, emb, h, h], patch_out [B, emb, 2h, 2h]).
        """
        pi, pd, pp = self.pool_ratio
        boundary, integrity = boundary_integrity(pred, self.bis_variant)
        fg = pred.sigmoid()
        x_img = x_img * resize_like(fg, x_img)
        x_depth = x_depth * resize_like(fg, x_depth)
        x_patch = x_patch * resize_like(fg, x_patch)

        img_cs = self.img_proj(x_img)
        hi, wi = img_cs.shape[-2:]
        t_img = img_cs.flatten(2).transpose(1, 2)
        tp_img = self._tokens(img_cs, pi)

        # depth with the integrity prior: note σ is applied after resizing P here
        gate = resize_like(pred, x_depth).sigmoid() + resize_like(integrity, x_depth)
        depth_cs = self.depth_proj(x_depth * gate)
        tp_depth = self._tokens(depth_cs, pd)

        patch_cs = self.patch_proj(self._reweight_patches(x_patch, boundary))
        tp_patch = self._tokens(patch_cs, pp)

        f_patch = self.coa_pi(tp_patch, torch.cat([tp_img, tp_depth], dim=1))
        f_img = self.coa_ip(t_img, f_patch)
        f_depth = self.coa_di(tp_depth, torch.cat([tp_img, tp_patch], dim=1))
        f_img = self.coa_id(f_img, f_depth)

        hd, wd = depth_cs.shape[-2:]
        hpp, wpp = patch_cs.shape[-2:]
        f_patch = resize(self._untoken(f_patch, hpp // pp, wpp // pp), (hpp, wpp))
        f_depth = resize(self._untoken(f_depth, hd // pd, wd // pd), (hd, wd))
        f_img = self._untoken(f_img, hi, wi)
        return f_img + img_cs, f_depth + depth_cs, f_patch + patch_cs
