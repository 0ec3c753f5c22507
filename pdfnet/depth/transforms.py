"""Depth Anything V2 pre- and post-processing in torch, batched, on any device.

These reproduce the official DAv2 ``DepthAnythingV2.infer_image`` (the path PDFNet's depth notebook
used), not the transformers image processor, which differs in three ways: it scales "as little as
possible" (so small images are *not* enlarged to a 518 short side), it has no ``>= input_size``
lower bound when rounding to a multiple of 14, and it resizes with antialiasing.

Official conventions, step by step:

1. RGB (the official code converts cv2's BGR to RGB first; we read RGB directly) as float in [0, 1].
2. Resize keeping the aspect ratio so the short side is >= ``input_size``: scale both sides by
   ``max(S/H, S/W)``, then round each to a multiple of 14 with numpy's half-to-even rounding; if that
   falls below ``S``, round up instead (``Resize(keep_aspect_ratio=True, ensure_multiple_of=14,
   resize_method='lower_bound')``). Our one bound on top: the long side is capped at
   ``MAX_ASPECT · S`` (rounded to the multiple), so a thin strip (8 × 2000 px) cannot become a
   518 × 129 500 input; images up to that aspect ratio (8:1) get exactly the official size. Bicubic
   (cv2 ``INTER_CUBIC`` = torch bicubic, a = -0.75, half-pixel centres, no antialiasing).
3. ImageNet normalisation.
4. The network output (relative inverse depth: near = large) goes through ReLU and is resized back
   to the original H×W, bilinear with ``align_corners=True``.
5. Per image min–max to [0, 255]. The release wrote the float map with ``cv2.imwrite``, which rounds
   to the nearest integer (half to even), so :func:`to_uint8` rounds (it does not truncate).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pdfnet.utils.normalize import IMAGENET_MEAN, IMAGENET_STD, minmax_normalize, minmax_normalize_np

#: Longest network-input side, in multiples of the input size S (the official rule has no bound).
MAX_ASPECT: float = 8.0


def _constrain(x: float, multiple: int, min_val: int) -> int:
    """Round ``x`` to a multiple (half to even), rounding up instead if the result is < ``min_val``."""
    y = round(x / multiple) * multiple
    if y < min_val:
        y = int(np.ceil(x / multiple)) * multiple
    return int(y)


def target_size(height: int, width: int, input_size: int = 518, multiple: int = 14,
                max_aspect: float = MAX_ASPECT) -> tuple[int, int]:
    """Network input size ``(h, w)`` for an ``height × width`` image (official ``lower_bound`` rule,
    long side capped at ``max_aspect · input_size``).

    Examples (S = 518): 37×53 → 518×742; 100×61 → 854×518; 1000×1000 → 518×518; with S = 1024 a
    square becomes 1036×1036; 8×2000 → 518×4144 (capped; uncapped 518×129 500).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"invalid image size {height}x{width}")
    scale = max(input_size / height, input_size / width)
    cap = max(input_size, int(max_aspect * input_size) // multiple * multiple)
    return (
        min(_constrain(scale * height, multiple, input_size), cap),
        min(_constrain(scale * width, multiple, input_size), cap),
    )


def preprocess(
    images: list[torch.Tensor],
    size: tuple[int, int],
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """Resize and normalise RGB images into one network batch.

    Args:
        images: ``B`` RGB uint8 tensors ``[H_i, W_i, 3]`` (sizes may differ), all on one device.
        size: network input ``(h, w)``; every image is resized to it (bicubic, no antialias).
        mean, std: per-channel normalisation of the [0, 1] image.

    Returns:
        float32 ``[B, 3, h, w]`` on the images' device.
    """
    out = []
    for img in images:
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an RGB image [H, W, 3], got shape {tuple(img.shape)}")
        x = img.permute(2, 0, 1).unsqueeze(0).to(torch.float32).div_(255.0)
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=False)
        out.append(x)
    batch = torch.cat(out, 0)
    m = torch.tensor(mean, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
    return (batch - m) / s


def postprocess(depth: torch.Tensor, sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """ReLU and bilinear (``align_corners=True``) resize of each prediction to its image's size.

    Args:
        depth: network output ``[B, h, w]`` (or ``[B, 1, h, w]``), any float dtype.
        sizes: original ``(H_i, W_i)`` per image.

    Returns:
        ``B`` float32 maps ``[H_i, W_i]`` on ``depth``'s device.
    """
    if depth.ndim == 4:
        depth = depth[:, 0]
    depth = F.relu(depth.float())
    out = []
    for d, (h, w) in zip(depth, sizes, strict=True):
        if tuple(d.shape) != (h, w):
            d = F.interpolate(d[None, None], size=(h, w), mode="bilinear", align_corners=True)[0, 0]
        out.append(d)
    return out


def quantize(depth: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Per-map min–max to ``[0, 2**bits - 1]``, rounded half to even (torch).

    Args:
        depth: float map ``[H, W]``.
        bits: 8 or 16.

    Returns:
        int32 ``[H, W]`` (convert to uint8/uint16 on the host). A constant map gives all zeros.
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    maxv = float(2**bits - 1)
    return torch.round(minmax_normalize(depth.float()) * maxv).clamp_(0, maxv).to(torch.int32)


def _quantize_np(depth: np.ndarray, bits: int) -> np.ndarray:
    maxv = np.float32(2**bits - 1)
    q = np.clip(np.rint(minmax_normalize_np(depth) * maxv), 0, maxv)
    return q.astype(np.uint8 if bits == 8 else np.uint16)


def to_uint8(depth: np.ndarray) -> np.ndarray:
    """Per-image min–max of a float map ``[H, W]`` to uint8 0–255 (the release's 8-bit depth)."""
    return _quantize_np(depth, 8)


def to_uint16(depth: np.ndarray) -> np.ndarray:
    """Per-image min–max of a float map ``[H, W]`` to uint16 0–65535 (``--bit-depth 16``)."""
    return _quantize_np(depth, 16)
