"""Helpers shared by the PDFNet losses: fp32 promotion and resizing.

The depth-target min–max is :func:`pdfnet.utils.normalize.minmax_normalize` (a constant map → zeros).

Shape conventions used throughout :mod:`pdfnet.losses`:

* ``B`` batch, ``S`` the target (GT) side length, ``N`` the number of stacked outputs.
* Targets (GT mask, depth target) are ``[B, 1, S, S]``.
* Predictions may carry extra *leading* dimensions, ``[*, B, 1, S, S]``; every per-output loss then
  returns one value per leading index (shape ``[*]``). This lets the composite loss evaluate the six
  mask outputs (and five depth outputs) in a single vectorised pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def as_target(x: torch.Tensor, name: str) -> torch.Tensor:
    """Return a target map as fp32 ``[B, 1, H, W]`` (accepts ``[B, H, W]`` too).

    Raises:
        ValueError: wrong rank or more than one channel.
    """
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{name} must be [B,1,H,W] or [B,H,W], got shape {tuple(x.shape)}")
    return x.float()


def resize_logits(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize logits ``[B, C, h, w]`` to ``size`` in fp32 (``align_corners=False``).

    This is the release's loss-side resize (``F.interpolate(mode='bilinear')``); it is skipped when
    the size already matches, as in the release.
    """
    x = x.float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


def stack_resized(
    logits: list[torch.Tensor] | tuple[torch.Tensor, ...], size: tuple[int, int]
) -> torch.Tensor:
    """Resize every ``[B, 1, h_i, w_i]`` logit map to ``size`` and stack them: ``[N, B, 1, *size]``."""
    return torch.stack([resize_logits(x, size) for x in logits], dim=0)


def mean_last(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Mean over the last ``ndim`` dimensions: ``[*, d1..dn] -> [*]``."""
    return x.mean(dim=tuple(range(-ndim, 0)))


def sum_last(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Sum over the last ``ndim`` dimensions: ``[*, d1..dn] -> [*]``."""
    return x.sum(dim=tuple(range(-ndim, 0)))
