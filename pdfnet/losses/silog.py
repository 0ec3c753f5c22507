"""Scale-invariant log loss for the train-only depth decoder (docs/architecture.md, "Losses").

q = σ(Q) in fp32, δ = log(D̂ + 1e-6) − log(q + 1e-6),
``L = sqrt(mean(δ²) − 0.5·mean(δ)² + 1e-6)`` with both means over the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from pdfnet.losses.common import NormMode, as_target, mean_last, minmax_normalize, resize_logits

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
    """SiLog loss of one depth-decoder output against the depth target.

    Args:
        depth_norm: ``'batch'`` (release) or ``'per_sample'`` min–max of the raw depth target.
    """

    def __init__(self, depth_norm: NormMode = "batch") -> None:
        super().__init__()
        self.depth_norm = depth_norm

    def terms(
        self, prob: torch.Tensor, depth: torch.Tensor, log_depth: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[*]`` SiLog for ``prob`` ``[*, B, 1, H, W]`` and a normalised target ``[B, 1, H, W]``."""
        return silog_terms(prob, depth, log_depth)

    def forward(
        self, logits: torch.Tensor, depth_target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """SiLog of σ(logits) against the RAW depth target (min–max normalised here).

        Args:
            logits: ``[B, 1, h, w]`` depth logits; resized to the target size.
            depth_target: ``[B, 1, H, W]`` raw depth target.

        Returns:
            ``(loss, {"silog": loss.detach()})`` with a 0-d fp32 loss.
        """
        depth = minmax_normalize(as_target(depth_target, "depth_target"), self.depth_norm)
        loss = self.terms(torch.sigmoid(resize_logits(logits, tuple(depth.shape[-2:]))), depth)
        return loss, {"silog": loss.detach()}
