"""Depth integrity-prior loss ``L_inte = l_v + l_g`` (the release's ``IntegrityPriorLoss``).

With p = σ(P), GT G and the normalised depth target D̂:

* p_y = G·p + (1 − G)(1 − p), FP = (1 − p_y)·p, FN = (1 − p_y)·G, ℓ = −log(p_y + 1e-8);
* μ = Σ(D̂·G) / ΣG, Δ = (D̂ − μ)²;
* depth stability ``l_v = mean(ℓ · p_y · [Δ·FP + (1 − Δ)·FN])``;
* depth continuity ``l_g = mean(ℓ · (|Sobel_x ∗ D̂| + |Sobel_y ∗ D̂|))`` (frozen kernels, padding 1).

Gradients flow through p only; the Sobel map and μ come from the target and carry no gradient.

Batch coupling (release): μ is ONE scalar over the whole batch (``integrity_mean='batch'``), so with
B > 1 each sample's Δ depends on the other samples' objects. ``integrity_mean='per_sample'`` uses each
sample's own μ_b. For B = 1 the two are identical.

Empty GT (ΣG = 0): the March-2025 release divides 0/0 and the loss becomes NaN; the Oct-2025 code adds
1e-8 to the denominator, which gives μ = 0. Here the denominator is replaced by 1 only where ΣG == 0,
so any non-empty batch keeps the release math bit-for-bit and an empty one gets μ = 0 (the Oct-2025
result). In the per-sample variant an empty sample likewise gets μ_b = 0: its Δ = D̂², so predicted
foreground is penalised more where the target is near (large disparity); its FN term is zero anyway.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from pdfnet.losses.common import mean_last
from pdfnet.utils.sobel import sobel_kernels

MeanMode = Literal["batch", "per_sample"]


def sobel_magnitude(depth: torch.Tensor, kernels: torch.Tensor | None = None) -> torch.Tensor:
    """``|Sobel_x ∗ D| + |Sobel_y ∗ D|`` with zero padding 1, without gradient.

    Args:
        depth: ``[B, 1, H, W]`` normalised depth target.
        kernels: ``[2, 1, 3, 3]`` (``sobel_kernels()`` when None).

    Returns:
        ``[B, 1, H, W]`` fp32, detached.
    """
    with torch.no_grad():
        d = depth.detach().float()
        k = (sobel_kernels() if kernels is None else kernels).to(device=d.device, dtype=d.dtype)
        g = F.conv2d(d, k, padding=1)  # [B, 2, H, W]
        return g.abs().sum(dim=1, keepdim=True)


def object_mean_depth(depth: torch.Tensor, gt: torch.Tensor, mode: MeanMode = "batch") -> torch.Tensor:
    """Mean target depth over the object, μ = Σ(D̂·G)/ΣG.

    Args:
        depth: ``[B, 1, H, W]`` normalised depth target.
        gt: ``[B, 1, H, W]`` GT mask.
        mode: ``'batch'`` (release: one scalar over the whole batch) or ``'per_sample'``.

    Returns:
        0-d tensor (batch) or ``[B, 1, 1, 1]`` (per sample), detached. Where ΣG == 0 the result is 0
        instead of the release's NaN (see the module docstring).
    """
    with torch.no_grad():
        d, g = depth.detach().float(), gt.detach().float()
        if mode == "batch":
            num, den = (d * g).sum(), g.sum()
        elif mode == "per_sample":
            num = (d * g).sum(dim=(1, 2, 3), keepdim=True)
            den = g.sum(dim=(1, 2, 3), keepdim=True)
        else:
            raise ValueError(f"integrity_mean must be 'batch' or 'per_sample', got {mode!r}")
        return num / torch.where(den == 0, torch.ones_like(den), den)


def integrity_terms(
    prob: torch.Tensor,
    gt: torch.Tensor,
    depth: torch.Tensor,
    *,
    depth_grad: torch.Tensor | None = None,
    mu: torch.Tensor | None = None,
    mean_mode: MeanMode = "batch",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth-stability and depth-continuity terms.

    Args:
        prob: ``[*, B, 1, H, W]`` probabilities σ(P) at the GT size.
        gt: ``[B, 1, H, W]`` GT mask.
        depth: ``[B, 1, H, W]`` depth target, already min–max normalised.
        depth_grad: precomputed ``sobel_magnitude(depth)``.
        mu: precomputed ``object_mean_depth(depth, gt, mean_mode)``.
        mean_mode: how μ is taken when ``mu`` is None.

    Returns:
        ``(l_v, l_g)``, each ``[*]`` (mean over batch and pixels).
    """
    prob = prob.float()
    gt = gt.float()
    depth = depth.float()
    if depth_grad is None:
        depth_grad = sobel_magnitude(depth)
    if mu is None:
        mu = object_mean_depth(depth, gt, mean_mode)
    p_y = gt * prob + (1.0 - gt) * (1.0 - prob)
    miss = 1.0 - p_y
    fp = miss * prob
    fn = miss * gt
    ell = -torch.log(p_y + 1e-8)
    delta = (depth - mu) ** 2
    lv = mean_last(ell * p_y * (delta * fp + (1.0 - delta) * fn), 4)
    lg = mean_last(ell * depth_grad, 4)
    return lv, lg


class IntegrityPriorLoss(nn.Module):
    """Depth integrity-prior loss ``(l_v, l_g)`` — the module :class:`~pdfnet.losses.PDFNetLoss` runs.

    Args:
        mean: ``'batch'`` (release) or ``'per_sample'`` object mean depth μ.
    """

    sobel: torch.Tensor

    def __init__(self, mean: MeanMode = "batch") -> None:
        super().__init__()
        if mean not in ("batch", "per_sample"):
            raise ValueError(f"integrity_mean must be 'batch' or 'per_sample', got {mean!r}")
        self.mean = mean
        # Frozen constants; non-persistent so they never enter a state_dict.
        self.register_buffer("sobel", sobel_kernels(), persistent=False)

    def target_stats(self, gt: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(depth_grad [B,1,H,W], mu)`` for a normalised depth target; computed once per call."""
        return sobel_magnitude(depth, self.sobel), object_mean_depth(depth, gt, self.mean)

    def forward(
        self,
        prob: torch.Tensor,
        gt: torch.Tensor,
        depth: torch.Tensor,
        target_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(l_v, l_g)``, each ``[*]``.

        Args:
            prob: ``[*, B, 1, H, W]`` probabilities σ(P) at the GT size (any number of stacked outputs).
            gt: ``[B, 1, H, W]`` GT mask.
            depth: ``[B, 1, H, W]`` depth target, already min–max normalised.
            target_stats: :meth:`target_stats` of ``(gt, depth)`` when the caller has it.
        """
        grad, mu = self.target_stats(gt, depth) if target_stats is None else target_stats
        return integrity_terms(prob, gt, depth, depth_grad=grad, mu=mu)
