"""The PDFNet release's training augmentations (``dataloaders/Mydataset.py``), applied jointly and
reproducibly.

Order and probabilities follow the release's ``build_dataset(is_train=True)``:

1. horizontal flip, p = 0.5 — image, GT, depth, depth target;
2. rotate-and-crop, p = 0.5 — integer angle in [-30, 30) degrees, nearest rotation with zero fill and no
   expansion, centre crop of the inscribed square of side ⌊H / (cos|θ| + sin|θ|)⌋, bilinear resize back
   (torchvision ``resize``: antialiased bilinear) — all four maps;
3. colour enhance, p = 0.5 — PIL ``ImageEnhance`` brightness U{0.5..1.5}, contrast U{0.5..1.5}, colour
   U{0..2.0}, sharpness U{0..3.0} in 0.1 steps, sequentially, on the uint8 image (truncated like the
   release) — image only;
4. 3-channel grayscale, p = 0.25 — image only;
5. centre "up-crop" zoom, p = 0.5 — crop width in [W-b, W) and height in [H-b, H), centred, bilinear
   (align_corners=True) resize back — all four maps. The release uses b = 30 px at 1024²; here the
   default border scales with the size (``round(30 * S / 1024)``) so the zoom strength is the same at
   every resolution (exactly 30 at 1024²);
6. ImageNet normalisation is left to the caller (:func:`pdfnet.utils.normalize.normalize_image`).

All geometric steps run on one stacked tensor, so image, GT and depth maps can never drift apart. Every
random draw comes from the ``numpy.random.Generator`` passed in (the dataset derives it from
``(seed, epoch, index)``), never from global RNG state. GT becomes soft at edges after the bilinear steps,
as in the release.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image, ImageEnhance

#: Release probabilities, in application order.
P_HFLIP, P_ROTATE, P_COLOR, P_GRAY, P_ZOOM = 0.5, 0.5, 0.5, 0.25, 0.5
MAX_ANGLE = 30
RELEASE_ZOOM_BORDER = 30
RELEASE_SIZE = 1024


def default_zoom_border(size: int) -> int:
    """Up-crop border for an ``size``-pixel side: the release's 30 px scaled from 1024 (at least 1)."""
    return max(1, round(RELEASE_ZOOM_BORDER * size / RELEASE_SIZE))


def rotate_and_crop(x: torch.Tensor, angle: int) -> torch.Tensor:
    """Rotate ``x`` ``[C, H, W]`` by ``angle`` degrees (nearest, zero fill), crop the centred inscribed
    square and resize back to ``[C, H, W]`` (bilinear, antialiased) — the release's ``rotate_and_crop``."""
    _, h, w = x.shape
    rot = TF.rotate(x, float(angle))
    theta = math.radians(abs(angle) % 180)
    if theta > math.pi / 2:
        theta = math.pi - theta
    side = int(h / (math.cos(theta) + math.sin(theta)))
    side = max(1, min(side, h, w))
    top, left = (h - side) // 2, (w - side) // 2
    crop = rot[:, top:top + side, left:left + side]
    return TF.resize(crop, [h, w], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)


def color_enhance(image: torch.Tensor, factors: Sequence[float]) -> torch.Tensor:
    """PIL brightness, contrast, colour and sharpness enhancement, in that order.

    Args:
        image: RGB ``[3, H, W]`` in [0, 1].
        factors: the four enhancement factors.

    Returns:
        ``[3, H, W]`` float32 in [0, 1] (quantised to 1/255 like the release's uint8 round trip).
    """
    arr = (image.clamp(0, 1) * 255.0).permute(1, 2, 0).numpy().astype(np.uint8)  # truncation, as released
    pil = Image.fromarray(arr)  # uint8 [H, W, 3] -> RGB
    for enhancer, f in zip((ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color,
                            ImageEnhance.Sharpness), factors):
        pil = enhancer(pil).enhance(f)
    return torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float() / 255.0


def zoom_crop(x: torch.Tensor, crop_h: int, crop_w: int) -> torch.Tensor:
    """Centre-crop ``x`` ``[C, H, W]`` to ``crop_h × crop_w`` and resize back (bilinear, align_corners)."""
    _, h, w = x.shape
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    crop = x[:, top:top + crop_h, left:left + crop_w]
    return F.interpolate(crop[None], size=(h, w), mode="bilinear", align_corners=True)[0]


def augment_train(
    image: torch.Tensor,
    maps: Sequence[torch.Tensor],
    rng: np.random.Generator,
    zoom_border: int | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Apply the release's training augmentations jointly (see the module docstring).

    Args:
        image: RGB ``[3, H, W]`` float32 in [0, 1] (not yet normalised).
        maps: single-channel maps ``[1, H, W]`` that follow the geometry (GT, depth, depth target).
        rng: the per-sample generator; all random draws come from it.
        zoom_border: up-crop border in pixels; None → :func:`default_zoom_border` of ``W``.

    Returns:
        ``(image [3, H, W], maps)`` with the same shapes, float32; image still in [0, 1].
    """
    n = len(maps)
    stack = torch.cat([image, *maps], dim=0)
    if rng.random() < P_HFLIP:
        stack = torch.flip(stack, dims=[2])
    if rng.random() < P_ROTATE:
        stack = rotate_and_crop(stack, int(rng.integers(-MAX_ANGLE, MAX_ANGLE)))
    image, rest = stack[:3], stack[3:]
    if rng.random() < P_COLOR:
        factors = (rng.integers(5, 16) / 10.0, rng.integers(5, 16) / 10.0,
                   rng.integers(0, 21) / 10.0, rng.integers(0, 31) / 10.0)
        image = color_enhance(image, factors)
    if rng.random() < P_GRAY:
        image = TF.rgb_to_grayscale(image, num_output_channels=3)
    if rng.random() < P_ZOOM:
        h, w = image.shape[-2:]
        b = default_zoom_border(w) if zoom_border is None else zoom_border
        if b > 0:
            cw = int(rng.integers(max(1, w - b), w))
            ch = int(rng.integers(max(1, h - b), h))
            stack = zoom_crop(torch.cat([image, rest], dim=0), ch, cw)
            image, rest = stack[:3], stack[3:]
    image = image.contiguous().float()
    return image, [rest[i:i + 1].contiguous().float() for i in range(n)]


__all__ = [
    "augment_train",
    "color_enhance",
    "default_zoom_border",
    "rotate_and_crop",
    "zoom_crop",
]
