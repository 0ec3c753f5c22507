"""Input normalisation, one owner: the ImageNet mean/std of the RGB input and the min–max of depth maps.

**Constant depth has one behaviour everywhere**: a map whose range is at most
:data:`CONSTANT_RTOL` × its largest magnitude (an exactly constant map, or one whose only variation is
float round-off, e.g. a constant map after a bilinear resize) has no depth information and min–max
normalises to **all zeros** — in the model's own normalisation, the loss targets, TTA, prediction and
evaluation alike, and when depth maps are written as 8/16-bit images. The release divides by the range
unguarded (NaN for a constant map); every non-constant map gives the release's values bit for bit.

Why RGB normalisation is a function and not model buffers (segment-anything's ``pixel_mean``/``pixel_std``):
``PDFNet.forward`` takes the ImageNet-normalised image, as the release's network does, so official
weights, the parity fixtures (stored as normalised inputs) and ONNX graphs keep the release's input
contract; the data pipeline normalises on the DataLoader workers after augmenting in [0, 1]. Moving it
into the model would change that contract for every caller with no numerical gain.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = [
    "CONSTANT_RTOL", "IMAGENET_MEAN", "IMAGENET_STD", "NormMode", "denormalize_image", "minmax_normalize",
    "minmax_normalize_np", "normalize_image",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: A map whose range is ≤ CONSTANT_RTOL · max(|min|, |max|) counts as constant (→ all zeros).
CONSTANT_RTOL = 1e-5

NormMode = Literal["batch", "per_sample"]


def _mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return mean, std


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalise RGB in [0, 1]: ``[..., 3, H, W]`` → same shape and dtype, ``(x − mean) / std``."""
    mean, std = _mean_std(image)
    return (image - mean) / std


def denormalize_image(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize_image`: ``[..., 3, H, W]`` → values in about [0, 1]."""
    mean, std = _mean_std(image)
    return image * std + mean


def minmax_normalize(x: torch.Tensor, mode: NormMode = "batch") -> torch.Tensor:
    """Min–max normalise to [0, 1], keeping shape and dtype; a constant map gives all zeros.

    Args:
        x: ``[B, C, H, W]`` (any shape with a leading batch axis for ``per_sample``).
        mode: ``batch`` — one min and one max over the **whole tensor** (the release's model and loss
            couple the samples of a batch this way; docs/differences.md); ``per_sample`` — each ``x[b]``
            on its own, so a non-constant sample spans exactly [0, 1] and a later ``batch`` min–max
            leaves it bit-identical.

    Returns:
        ``(x − min) / (max − min)``, or zeros where the range is ≤ :data:`CONSTANT_RTOL` · max(|min|, |max|).
    """
    if mode == "batch":
        # full reductions via min()/max(): amin()/amax() without dims do not export to ONNX
        lo, hi = x.min(), x.max()
    elif mode == "per_sample":
        flat = x.flatten(1)
        shape = (-1,) + (1,) * (x.dim() - 1)
        lo, hi = flat.min(dim=1).values.view(shape), flat.max(dim=1).values.view(shape)
    else:
        raise ValueError(f"min–max mode must be 'batch' or 'per_sample', got {mode!r}")
    rng = hi - lo
    ok = rng > CONSTANT_RTOL * torch.maximum(lo.abs(), hi.abs())
    out = (x - lo) / torch.where(ok, rng, torch.ones_like(rng))
    return torch.where(ok, out, torch.zeros_like(out))


def minmax_normalize_np(x: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`minmax_normalize` (whole array) for host maps: float32, same constant rule."""
    d = np.asarray(x, dtype=np.float32)
    lo, hi = d.min(), d.max()
    rng = hi - lo
    if not rng > CONSTANT_RTOL * max(abs(lo), abs(hi)):  # also catches NaN / inf
        return np.zeros(d.shape, dtype=np.float32)
    return (d - lo) / rng
