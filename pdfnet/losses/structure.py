"""Structure loss: edge-weighted BCE + weighted IoU (the official ``structure_loss``).

The weight map emphasises pixels near GT edges: ``w = 1 + 5·|AvgPool31(G) − G|`` (stride 1, padding 15,
zero padding counted). Both parts are per-image weighted means, then averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from pdfnet.losses.common import mean_last, sum_last


def edge_weight(gt: torch.Tensor, kernel: int = 31, strength: float = 5.0) -> torch.Tensor:
    """Edge weight map ``1 + strength·|box_k(G) − G|``.

    The k×k average pool (stride 1, padding k//2, zero padding counted in the divisor, as
    ``F.avg_pool2d(..., count_include_pad=True)``) is done separably: a k×1 then a 1×k pool, which is
    exactly the same box filter at O(k) instead of O(k²) per pixel.

    Args:
        gt: ``[B, 1, H, W]`` GT mask in [0, 1] (soft edges allowed).
        kernel: odd box size (31 in the release).
        strength: the multiplier (5 in the release).

    Returns:
        ``[B, 1, H, W]`` fp32 weights ≥ 1.
    """
    g = gt.float()
    pad = kernel // 2
    box = F.avg_pool2d(g, (kernel, 1), stride=1, padding=(pad, 0), count_include_pad=True)
    box = F.avg_pool2d(box, (1, kernel), stride=1, padding=(0, pad), count_include_pad=True)
    return 1.0 + strength * (box - g).abs()


def structure_terms(
    logits: torch.Tensor,
    gt: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    iou_smooth: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted BCE and weighted IoU, each averaged over the batch.

    Args:
        logits: ``[*, B, 1, H, W]`` mask logits, already at the GT size.
        gt: ``[B, 1, H, W]`` GT mask (broadcast against the leading dims of ``logits``).
        weight: ``[B, 1, H, W]`` pixel weights; ``edge_weight(gt)`` when None.
        iou_smooth: ε added to the IoU numerator and denominator (+1 March-2025, 1e-6 Oct-2025).

    Returns:
        ``(wbce, wiou)``, each of shape ``[*]`` (0-d for a plain ``[B, 1, H, W]`` input).
    """
    logits = logits.float()
    gt = gt.float()
    if weight is None:
        weight = edge_weight(gt)
    bce = F.binary_cross_entropy_with_logits(logits, gt.expand_as(logits), reduction="none")
    wbce = sum_last(weight * bce, 2) / sum_last(weight, 2)  # [*, B, 1]
    prob = torch.sigmoid(logits)
    inter = sum_last(prob * gt * weight, 2)
    union = sum_last((prob + gt) * weight, 2)
    wiou = 1.0 - (inter + iou_smooth) / (union - inter + iou_smooth)
    return mean_last(wbce, 2), mean_last(wiou, 2)


class StructureLoss(nn.Module):
    """Edge-weighted BCE + weighted IoU — the module :class:`~pdfnet.losses.PDFNetLoss` runs.

    Args:
        iou_smooth: IoU smoothing ε (+1 in the March-2025 release, 1e-6 in Oct-2025).
        kernel: box size of the edge-weight pool (31).
        strength: edge-weight multiplier (5).
    """

    def __init__(self, iou_smooth: float = 1.0, kernel: int = 31, strength: float = 5.0) -> None:
        super().__init__()
        self.iou_smooth = float(iou_smooth)
        self.kernel = int(kernel)
        self.strength = float(strength)

    def weight(self, gt: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]`` edge weight map of ``gt``."""
        return edge_weight(gt, self.kernel, self.strength)

    def forward(
        self, logits: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(wbce, wiou)``, each ``[*]``, for ``logits`` ``[*, B, 1, H, W]`` at the GT size and ``gt``
        ``[B, 1, H, W]`` (``weight`` = :meth:`weight` of ``gt`` when precomputed)."""
        if weight is None:
            weight = self.weight(gt)
        return structure_terms(logits, gt, weight, iou_smooth=self.iou_smooth)
