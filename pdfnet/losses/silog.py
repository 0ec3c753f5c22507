"""Scale-invariant log loss for the train-only depth decoder (docs/architecture.md, "Losses").

q = σ(Q) in fp32, δ = log(D̂ + 1e-6) − log(q + 1e-6),
``L = sqrt(mean(δ²) − 0.5·mean(δ)² + 1e-6)`` with both means over the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pdfnet.losses.common import mean_last

EPS = 1e-6


def silog_terms(
    prob: torch.Tensor, depth: torch.Tensor, log_depth: torch.Tensor | None = None
) -> torch.Tensor:
    """SiLog per leading index.

    Args:
        prob: ``[*, B, 1, H, W]`` predicted depth σ(Q) in (0, 1), at the target size.
        depth: ``[B, 1, H, W]`` normalised depth target D̂.
        log_depth: precomputed ``log(D̂ + 1e-6)``.

    Returns:
        ``[*]`` fp32 losses.
    """
    prob = prob.float()
    if log_depth is None:
        log_depth = torch.log(depth.float() + EPS)
    delta = log_depth - torch.log(prob + EPS)
    n = depth.dim()
    return torch.sqrt(mean_last(delta * delta, n) - 0.5 * mean_last(delta, n) ** 2 + EPS)


class SiLogLoss(nn.Module):
    """SiLog of the depth-decoder outputs — the module :class:`~pdfnet.losses.PDFNetLoss` runs."""

    def forward(
        self, prob: torch.Tensor, depth: torch.Tensor, log_depth: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[*]`` SiLog for ``prob`` = σ(Q) ``[*, B, 1, H, W]`` at the target size and a normalised
        target ``depth`` ``[B, 1, H, W]`` (``log_depth`` = ``log(depth + 1e-6)`` when precomputed)."""
        return silog_terms(prob, depth, log_depth)
