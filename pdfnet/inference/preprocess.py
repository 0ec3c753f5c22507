"""Input conversion for inference: any image → RGB uint8, square model tensors, back to input size.

Geometry follows the release (``dataloaders/Mydataset.py``, ``metric_tools/Test.py``): image and depth are
resized to the model's square side S **ignoring the aspect ratio** (bilinear, ``align_corners=True``, like
the release's loader); the predicted probability map is resized back to each input's ``H × W`` (bilinear,
antialiased when shrinking, like the PIL resize the release uses to save predictions).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pdfnet.errors import UserError
from pdfnet.utils.io import MAX_PIXELS, ImageReadError, read_gray_float, read_rgb
from pdfnet.utils.normalize import minmax_normalize, normalize_image

#: Smallest accepted image side, in pixels. Smaller inputs carry no usable structure (and DAv2's
#: patching of a 1-px image is meaningless), so they are refused with a clear error.
MIN_SIDE: int = 8


def to_rgb_uint8(img: Any, name: str = "image", max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Convert a path, PIL image or numpy array to RGB uint8 ``[H, W, 3]``.

    Accepted arrays: ``[H, W]``, ``[H, W, 1]`` (grayscale, replicated), ``[H, W, 3]`` (RGB) and
    ``[H, W, 4]`` (RGBA; alpha dropped); dtypes uint8, uint16 (scaled by 1/257), bool, and float in
    [0, 1] (clipped). Paths go through :func:`pdfnet.utils.io.read_rgb` (OpenCV decoding, 16-bit and
    alpha handled the same way; files over ``max_pixels`` refused before decoding).

    Raises:
        ImageReadError: unreadable file.
        UserError: unsupported type, shape or dtype, or a side smaller than :data:`MIN_SIDE`.
    """
    if isinstance(img, (str, os.PathLike)):
        rgb = read_rgb(img, max_pixels=max_pixels)
        name = str(img)
    else:
        arr = _pil_to_array(img) if _is_pil(img) else img
        if not isinstance(arr, np.ndarray):
            raise UserError(f"{name}: expected a path, PIL image or numpy array, got {type(img).__name__}")
        rgb = _array_to_rgb(arr, name)
    check_min_side(rgb.shape[0], rgb.shape[1], name)
    return rgb


def check_min_side(h: int, w: int, name: str) -> None:
    """Raise a :class:`UserError` naming ``name`` when ``min(h, w) < MIN_SIDE``."""
    if min(h, w) < MIN_SIDE:
        raise UserError(f"{name}: image is {w}x{h} px; at least {MIN_SIDE}x{MIN_SIDE} is required")


def _is_pil(img: Any) -> bool:
    return isinstance(img, Image.Image)


def _pil_to_array(img: Any) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img).astype(np.uint16 if img.mode != "I" else np.int64)
    if img.mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
    return np.array(img)  # a writable copy (np.asarray of a PIL image is read-only)


def _array_to_rgb(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise UserError(f"{name}: expected an [H,W], [H,W,1], [H,W,3] or [H,W,4] array, "
                        f"got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16:
        out = (arr.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise UserError(f"{name}: float image contains NaN or inf")
        out = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 65535:
            raise UserError(f"{name}: integer image values outside [0, 65535]")
        return _array_to_rgb(arr.astype(np.uint16 if arr.max() > 255 else np.uint8), name)
    else:
        raise UserError(f"{name}: unsupported array dtype {arr.dtype}")
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    elif out.shape[2] == 4:
        out = out[:, :, :3]
    return np.ascontiguousarray(out)


def to_depth_float(depth: Any, name: str = "depth", max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Convert a depth map (path, PIL or array ``[H, W]`` / ``[H, W, 1]``) to float32 ``[H, W]``.

    Paths and integer arrays are scaled to [0, 1] (8-bit /255, 16-bit /65535; colour files go to gray
    with OpenCV's weights); float arrays are kept as they are (any range: the map is min–max
    normalised later anyway). Polarity must be DAv2's (near = large).
    """
    if isinstance(depth, (str, os.PathLike)):
        return read_gray_float(depth, max_pixels=max_pixels)
    arr = np.asarray(depth) if _is_pil(depth) else depth
    if not isinstance(arr, np.ndarray):
        raise UserError(f"{name}: expected a path, PIL image or numpy array, got {type(depth).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise UserError(f"{name}: expected a single-channel [H,W] depth map, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise UserError(f"{name}: depth contains NaN or inf")
        return out
    raise UserError(f"{name}: unsupported depth dtype {arr.dtype}")


def image_to_tensor(rgb: np.ndarray, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB uint8 ``[H, W, 3]`` → ImageNet-normalised float32 ``[1, 3, size, size]`` on ``device``.

    Resize: bilinear, ``align_corners=True``, aspect ratio ignored (the release's loader).
    """
    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(device)
    x = x.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
    return normalize_image(x)


def depth_to_tensor(depth: np.ndarray, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Depth float ``[H, W]`` → float32 ``[1, 1, size, size]`` min–max normalised to exactly [0, 1].

    The min–max runs **after** the resize, per image (:func:`~pdfnet.utils.normalize.minmax_normalize`,
    ``per_sample``), so the model's own whole-batch min–max is a no-op and batched results equal
    single-image ones. A constant map gives all zeros (no depth information), as everywhere.
    """
    d = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32)).to(device)[None, None]
    if tuple(d.shape[-2:]) != (size, size):
        d = F.interpolate(d, size=(size, size), mode="bilinear", align_corners=True)
    return minmax_normalize(d, "per_sample")


def prob_to_size(prob: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """Probability ``[1, 1, S, S]`` (or ``[S, S]``) → float32 numpy ``[H, W]`` in [0, 1].

    Bilinear, ``align_corners=False``, antialiased when shrinking (close to PIL's bilinear resize).
    """
    p = prob.float()
    while p.dim() < 4:
        p = p.unsqueeze(0)
    if tuple(p.shape[-2:]) != tuple(hw):
        shrink = hw[0] < p.shape[-2] or hw[1] < p.shape[-1]
        p = F.interpolate(p, size=hw, mode="bilinear", align_corners=False, antialias=shrink)
    return p[0, 0].clamp_(0.0, 1.0).cpu().numpy()


def prob_to_uint8(prob: np.ndarray) -> np.ndarray:
    """float [0, 1] → uint8 with rounding (``round(255·p)``)."""
    return (np.clip(prob, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def source_name(img: Any, index: int) -> str:
    """A display name for input ``index``: the path for paths, else ``image[index]``."""
    if isinstance(img, (str, os.PathLike)):
        return str(Path(img))
    return f"image[{index}]"


__all__ = [
    "MIN_SIDE", "ImageReadError", "check_min_side", "depth_to_tensor",
    "image_to_tensor", "prob_to_size", "prob_to_uint8", "source_name", "to_depth_float",
    "to_rgb_uint8",
]
