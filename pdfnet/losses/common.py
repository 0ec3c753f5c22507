"""Helpers shared by the PDFNet losses: fp32 promotion, resizing, depth-target normalisation.

Shape conventions used throughout :mod:`pdfnet.losses`:

* ``B`` batch, ``S`` the target (GT) side length, ``N`` the number of stacked outputs.
* Targets (GT mask, depth target) are ``[B, 1, S, S]``.
* Predictions may carry extra *leading* dimensions, ``[*, B, 1, S, S]``; every per-output loss then
  returns one value per leading index (shape ``[*]``). This lets the composite loss evaluate the six
  mask outputs (and five depth outputs) in a single vectorised pass.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

NormMode = Literal["batch", "per_sample"]


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


def minmax_normalize(depth: torch.Tensor, mode: NormMode = "batch") -> torch.Tensor:
    """Min–max normalise a raw depth target ``[B, 1, H, W]`` to [0, 1] (fp32).

    ``mode='batch'`` is the release: one min and one max over the **whole batch tensor**, so the
    samples of a batch are coupled when B > 1 (docs/differences.md, "Training"). ``mode='per_sample'``
    uses each sample's own min and max. A constant map (max == min), which gives 0/0 = NaN in the
    release, maps to all zeros here instead.
    """
    depth = depth.float()
    if mode == "batch":
        lo, hi = depth.amin(), depth.amax()
    elif mode == "per_sample":
        lo = depth.amin(dim=(1, 2, 3), keepdim=True)
        hi = depth.amax(dim=(1, 2, 3), keepdim=True)
    else:
        raise ValueError(f"depth_target_norm must be 'batch' or 'per_sample', got {mode!r}")
    rng = hi - lo
    rng = torch.where(rng > 0, rng, torch.ones_like(rng))
    return (depth - lo) / rng


def mean_last(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Mean over the last ``ndim`` dimensions: ``[*, d1..dn] -> [*]``."""
    return x.mean(dim=tuple(range(-ndim, 0)))


def sum_last(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Sum over the last ``ndim`` dimensions: ``[*, d1..dn] -> [*]``."""
    return x.sum(dim=tuple(range(-ndim, 0)))
