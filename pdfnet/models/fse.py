"""FSE: fine-grained semantic enhancement (the release's ``FSE``): BIS, foreground gating, patch
re-weighting over the grid×grid blocks and four CoA cross-attention blocks.

The two releases differ in three small behaviours; each is a part passed in by the factory
(:func:`pdfnet.models.build_model` maps the config's release names onto them), so ``forward`` has no
release branches (docs/differences.md). March-2025 (the released checkpoint) → Oct-2025:

* boundary/integrity (BIS): :class:`SoftBoundary` (b = 2r, integrity = ReLU(σ(P) − 5b)) →
  :class:`ThresholdBoundary` (b = 1[r > 0.1] if (H_P // 8) is even else r, integrity = ReLU(σ(P) − b));
* patch weight of block k with mean boundary s_k: :class:`LinearPatchWeight` (1 + 5·s_k) →
  :class:`BinaryPatchWeight` (1 + 1[s_k > 0]);
* CoA branch: ``CoA(dropout_before_norm=True)``, x + Norm(Drop(Attn)) → ``False``, x + Drop(Norm(Attn))
  (identical in eval).

None of the parts holds parameters, so both releases share one state-dict layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import CRS, RMSNorm, SingleHeadCrossAttention, SwiGLU, resize, resize_like

__all__ = [
    "FSE", "BinaryPatchWeight", "CoA", "LinearPatchWeight", "SoftBoundary", "ThresholdBoundary",
    "boundary_residual",
]

class CoA(nn.Module):
    """Cross-attention block: x = q + N1(Attn(q, kv)); y = x + N2(SwiGLU(x)) (post-norm on the branch).

    Args:
        emb: token width.
        dropout: attention and branch dropout (0.1 in the release; training only).
        dropout_before_norm: the branch is Norm(Dropout(·)) (March-2025) or Dropout(Norm(·)) (Oct-2025).
    """

    def __init__(self, emb: int, *, dropout: float = 0.1, dropout_before_norm: bool = True) -> None:
        super().__init__()
        self.attn = SingleHeadCrossAttention(emb, dropout)
        self.norm1 = RMSNorm(emb)
        self.ffn = SwiGLU(emb, emb)
        self.norm2 = RMSNorm(emb)
        self.drop = nn.Dropout(dropout)
        self.dropout_before_norm = dropout_before_norm

    def _branch(self, y: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return norm(self.drop(y)) if self.dropout_before_norm else self.drop(norm(y))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """q: [B, Lq, emb], kv: [B, Lk, emb] → [B, Lq, emb]."""
        x = q + self._branch(self.attn(q, kv), self.norm1)
        return x + self._branch(self.ffn(x), self.norm2)


def boundary_residual(pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """What both BIS parts start from: ``(σ(P), r, k)`` for logits P ``[B, 1, H, W]``.

    s = σ(σ(P)) (the release's double sigmoid); A = AvgPool(s), kernel k+1 (k even) or k (k odd),
    k = H//8, stride 1, padding k//2, zero padding counted; r = |s − A| ``[B, 1, H, W]``.
    """
    k = pred.shape[-2] // 8
    kw = pred.shape[-1] // 8
    sig = pred.sigmoid()
    s = sig.sigmoid()
    ksize = (k + 1, kw + 1) if k % 2 == 0 else (k, kw)
    r = (s - F.avg_pool2d(s, kernel_size=ksize, stride=1, padding=(k // 2, kw // 2))).abs()
    return sig, r, k


class SoftBoundary(nn.Module):
    """BIS of March-2025: boundary b = 2r, integrity = ReLU(σ(P) − 5b).

    ``forward(pred [B, 1, H, W] logits) -> (boundary, integrity)``, both ``[B, 1, H, W]``.
    """

    def forward(self, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sig, r, _ = boundary_residual(pred)
        b = 2 * r
        return b, F.relu(sig - 5 * b)


class ThresholdBoundary(nn.Module):
    """BIS of Oct-2025: b = 1[r > 0.1] when H//8 is even, else r; integrity = ReLU(σ(P) − b).

    ``forward(pred [B, 1, H, W] logits) -> (boundary, integrity)``, both ``[B, 1, H, W]``.
    """

    def forward(self, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sig, r, k = boundary_residual(pred)
        b = (r > 0.1).to(r.dtype) if k % 2 == 0 else r
        return b, F.relu(sig - b)


class LinearPatchWeight(nn.Module):
    """Patch weight of March-2025: ``1 + scale·s`` for the mean boundary score s of a block (any shape)."""

    def __init__(self, scale: float = 5.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, score: torch.Tensor) -> torch.Tensor:
        return 1 + self.scale * score


class BinaryPatchWeight(nn.Module):
    """Patch weight of Oct-2025: ``1 + 1[s > 0]`` (every block that touches a boundary counts twice)."""

    def forward(self, score: torch.Tensor) -> torch.Tensor:
        return 1 + (score > 0).to(score.dtype)


class FSE(nn.Module):
    """One FSE step of the mask decoder.

    Args:
        img_dim, depth_dim, patch_dim: input channels of X_i, X_d, X_p (2·emb in PDFNet).
        emb: token width.
        pool_ratio: (p_i, p_d, p_p) average-pool factors of the key/value tokens.
        patch_ratio: grid of the patch re-weighting (8).
        dropout: CoA dropout.
        boundary: the BIS part (:class:`SoftBoundary` or :class:`ThresholdBoundary`; default Soft).
        patch_weight: block weight from its boundary score (:class:`LinearPatchWeight` by default).
        dropout_before_norm: CoA branch order (see :class:`CoA`).
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
        boundary: nn.Module | None = None,
        patch_weight: nn.Module | None = None,
        dropout_before_norm: bool = True,
    ) -> None:
        super().__init__()
        self.pool_ratio = tuple(int(p) for p in pool_ratio)
        self.patch_ratio = patch_ratio
        self.boundary = boundary if boundary is not None else SoftBoundary()
        self.patch_weight = patch_weight if patch_weight is not None else LinearPatchWeight()
        self.img_proj = CRS(img_dim, emb)
        self.depth_proj = CRS(depth_dim, emb)
        self.patch_proj = CRS(patch_dim, emb)
        self.coa_pi = CoA(emb, dropout=dropout, dropout_before_norm=dropout_before_norm)
        self.coa_ip = CoA(emb, dropout=dropout, dropout_before_norm=dropout_before_norm)
        self.coa_di = CoA(emb, dropout=dropout, dropout_before_norm=dropout_before_norm)
        self.coa_id = CoA(emb, dropout=dropout, dropout_before_norm=dropout_before_norm)

    def _reweight_patches(self, patch: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        """Scale each of the grid² blocks of ``patch`` [B, C, Hp, Wp] by its mean boundary score."""
        g = self.patch_ratio
        b, c, hp, wp = patch.shape
        hb, wb = boundary.shape[-2:]
        score = boundary.reshape(b, 1, g, hb // g, g, wb // g).mean(dim=(3, 5))  # [B, 1, g, g]
        weight = self.patch_weight(score)
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
        boundary, integrity = self.boundary(pred)
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
