"""Test-time augmentation for PDFNet: horizontal flip × scale {0.75, 1, 1.25} (6 passes).

Release semantics (the official ``metric_tools/Test.py`` with ttach): every pass transforms the
image **and the depth map** the same way (bilinear, ``align_corners=False`` for the scaling), runs the
network, maps the **logits** back to the input geometry (resize back, then un-flip) and averages them;
the sigmoid is applied by the caller to the mean logits.

This module is shared by :mod:`pdfnet.inference` (``pdfnet predict``) and the model-evaluation engine:
:func:`tta_logits` takes any ``forward(image, depth) -> logits`` callable, so it knows nothing about
the model class.

Scaled sizes are rounded to the nearest multiple of ``size_step`` (the network only accepts sides that
are multiples of its stride, e.g. 32); at 1024 the passes run at 768, 1024 and 1280, exactly as the
release's ``scale_factor`` interpolation does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from pdfnet.utils.normalize import minmax_normalize

#: The release's TTA scales (ttach ``Scale([0.75, 1, 1.25])``).
TTA_SCALES: tuple[float, ...] = (0.75, 1.0, 1.25)

#: ``forward(image [B,3,h,w], depth [B,1,h,w]) -> logits [B,1,h',w']``.
ForwardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def scaled_side(side: int, scale: float, size_step: int) -> int:
    """``side * scale`` rounded (half up) to the nearest positive multiple of ``size_step``.

    >>> scaled_side(1024, 0.75, 32), scaled_side(1024, 1.25, 32), scaled_side(256, 0.75, 32)
    (768, 1280, 192)
    """
    if side <= 0 or size_step <= 0 or scale <= 0:
        raise ValueError(f"side, scale and size_step must be positive (got {side}, {scale}, {size_step})")
    return max(size_step, int(side * scale / size_step + 0.5) * size_step)  # round half up


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def tta_logits(
    forward: ForwardFn,
    image: torch.Tensor,
    depth: torch.Tensor,
    *,
    scales: Sequence[float] = TTA_SCALES,
    hflip: bool = True,
    size_step: int = 32,
    renormalize_depth: bool = True,
) -> torch.Tensor:
    """Mean de-augmented logits over flip × scale passes (``2 × len(scales)`` forwards by default).

    Pass ``(flip, s)``: ``x' = resize(flip(x), side_s)`` for image and depth alike (bilinear,
    ``align_corners=False``; no resize when ``side_s`` equals the input side), ``y = forward(x')``,
    then ``resize(y, (H, W))`` and un-flip. The result is the fp32 mean over passes; apply
    ``torch.sigmoid`` to it for the probability (release order: average logits, then sigmoid).

    Args:
        forward: the network, ``(image, depth) -> logits [B, 1, h, w]``.
        image: normalised RGB ``[B, 3, H, W]``.
        depth: depth ``[B, 1, H, W]`` in [0, 1].
        scales: scale factors; the scaled sides are rounded to multiples of ``size_step``.
        hflip: also run every scale on the horizontally flipped input.
        size_step: the network's side granularity (scaled sides are multiples of it).
        renormalize_depth: min–max each transformed depth map per image
            (:func:`~pdfnet.utils.normalize.minmax_normalize`, ``per_sample``; a constant map → zeros).
            For a batch of one this equals what the release's model does inside (it min–max
            normalises the depth tensor it receives); for larger batches it keeps items independent
            of each other. ``False`` passes the resized depth through untouched.

    Returns:
        Mean logits ``[B, 1, H, W]``, fp32.
    """
    if image.dim() != 4 or depth.dim() != 4 or image.shape[0] != depth.shape[0]:
        raise ValueError(f"expected image [B,3,H,W] and depth [B,1,H,W], got {tuple(image.shape)}, "
                         f"{tuple(depth.shape)}")
    if image.shape[-2:] != depth.shape[-2:]:
        raise ValueError(f"image and depth sizes differ: {tuple(image.shape[-2:])} "
                         f"vs {tuple(depth.shape[-2:])}")
    if not scales:
        raise ValueError("scales must not be empty")
    h, w = int(image.shape[-2]), int(image.shape[-1])
    flips = (False, True) if hflip else (False,)
    total: torch.Tensor | None = None
    n = 0
    for flip in flips:
        img_f = image.flip(-1) if flip else image
        dep_f = depth.flip(-1) if flip else depth
        for s in scales:
            size = (scaled_side(h, s, size_step), scaled_side(w, s, size_step))
            img_s = _resize(img_f, size)
            dep_s = _resize(dep_f, size)
            if renormalize_depth:
                dep_s = minmax_normalize(dep_s, "per_sample")
            y = forward(img_s, dep_s).float()
            y = _resize(y, (h, w))
            if flip:
                y = y.flip(-1)
            total = y if total is None else total + y
            n += 1
    assert total is not None
    return total / n
