"""Three-stream encoder (docs/architecture.md, "Encoder"): RGB and depth at S/down_ratio, and grid² RGB tiles.

One backbone and one set of CRS projections serve all three streams:

1. depth is min–max normalised over the **whole batch tensor** and repeated to 3 channels;
2. RGB and depth are resized to S/down_ratio (bilinear, align_corners=True) and encoded as one
   batch [RGB; depth];
3. the full-resolution RGB is cut into grid×grid tiles of S/grid (reshape/permute, no loop),
   encoded as one batch, and each level is re-tiled into a map grid× the tile map.

Each pass yields five 128-ch maps (L1..L4 from the stage outputs, plus the global token G =
CRS(CRS(cat[resize(L1..L3 → L4), L4]))).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from ..errors import InputSizeError
from ..utils.normalize import minmax_normalize
from .layers import CRS, resize, resize_like, tile, untile

__all__ = ["EncoderFeatures", "FeatureProjector", "ThreeStreamEncoder", "normalize_depth"]


class StreamFeatures(NamedTuple):
    """Five emb-channel maps of one stream: L1..L4 (strides 4..32 of its input) and the global G (L4 size)."""

    l1: torch.Tensor
    l2: torch.Tensor
    l3: torch.Tensor
    l4: torch.Tensor
    g: torch.Tensor


class EncoderFeatures(NamedTuple):
    """The three streams. ``depth_in`` is the normalised depth×3 at full size [B, 3, S, S]."""

    rgb: StreamFeatures
    depth: StreamFeatures
    patch: StreamFeatures
    depth_in: torch.Tensor


def normalize_depth(depth: torch.Tensor) -> torch.Tensor:
    """Min–max over the whole batch tensor (the release's coupling across samples), then ×3 channels.

    Args:
        depth: [B, 1, S, S] (or [B, 3, S, S]) pseudo-depth.

    Returns:
        [B, 3, S, S] in [0, 1]; all zeros for a constant map (the package-wide rule of
        :func:`pdfnet.utils.normalize.minmax_normalize`; the release gives NaN there).
    """
    d = minmax_normalize(depth, "batch")
    if d.shape[1] == 1:
        d = d.expand(-1, 3, -1, -1)
    return d


class FeatureProjector(nn.Module):
    """CRS(C_k → emb) per stage (``stage1..4``), then G = glob(fuse(cat[resize(L1..L3 → L4), L4])).

    Args:
        in_channels: the 4 backbone channel counts.
        emb: projection width (128).
    """

    def __init__(self, in_channels: Sequence[int], emb: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(CRS(c, emb) for c in in_channels)
        self.fuse = CRS(4 * emb, emb)
        self.glob = CRS(emb, emb)

    def forward(self, feats: Sequence[torch.Tensor]) -> StreamFeatures:
        """feats: 4 maps [N, C_k, h_k, w_k] → :class:`StreamFeatures` of [N, emb, h_k, w_k] (+ G at h_4)."""
        l1, l2, l3, l4 = (p(f) for p, f in zip(self.stages, feats))
        cat = torch.cat([resize_like(l1, l4), resize_like(l2, l4), resize_like(l3, l4), l4], dim=1)
        g = self.glob(self.fuse(cat))
        return StreamFeatures(l1, l2, l3, l4, g)


class ThreeStreamEncoder(nn.Module):
    """Shared backbone + projector over RGB (S/down_ratio), depth (S/down_ratio) and grid² RGB tiles.

    Args:
        backbone: see :mod:`pdfnet.models.backbones`.
        projector: :class:`FeatureProjector` matching the backbone channels.
        patch_ratio: tiles per side (8).
        down_ratio: global-stream downscale (2).
    """

    def __init__(self, backbone: nn.Module, projector: FeatureProjector, *, patch_ratio: int = 8,
                 down_ratio: int = 2) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.patch_ratio = patch_ratio
        self.down_ratio = down_ratio

    def check_size(self, h: int, w: int) -> None:
        """Raise :class:`InputSizeError` (a ValueError) unless h×w is square and tiles validly."""
        m = int(getattr(self.backbone, "input_multiple", 1))
        unit = max(self.patch_ratio * m, self.down_ratio * m)
        if h != w:
            raise InputSizeError(f"PDFNet needs a square input (H == W), got {h}×{w}")
        if h % (self.patch_ratio * m) or (h // self.down_ratio) % m or h % self.down_ratio:
            raise InputSizeError(
                f"input size {h} is not supported: it must be a multiple of {unit} "
                f"(patch_ratio {self.patch_ratio} × backbone input multiple {m}, and S/{self.down_ratio} "
                f"a multiple of {m})"
            )

    def encode(self, x: torch.Tensor) -> StreamFeatures:
        """x: [N, 3, h, w] → projected :class:`StreamFeatures`."""
        return self.projector(self.backbone(x))

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> EncoderFeatures:
        """Encode the three streams.

        Args:
            image: [B, 3, S, S] ImageNet-normalised RGB.
            depth: [B, 1, S, S] pseudo-depth (any affine range; min–max normalised here).

        Returns:
            :class:`EncoderFeatures`; RGB/depth maps at S/(d·4)…, patch maps at grid× the tile maps.
        """
        b, _, h, w = image.shape
        self.check_size(h, w)
        if depth.shape[-2:] != image.shape[-2:]:
            raise InputSizeError(f"depth {tuple(depth.shape)} and image {tuple(image.shape)} sizes differ")
        depth3 = normalize_depth(depth)
        small = (h // self.down_ratio, w // self.down_ratio)
        both = self.encode(torch.cat([resize(image, small), resize(depth3, small)], dim=0))
        rgb = StreamFeatures(*(t[:b] for t in both))
        dep = StreamFeatures(*(t[b:] for t in both))
        tiles = self.encode(tile(image, self.patch_ratio))
        patch = StreamFeatures(*(untile(t, self.patch_ratio) for t in tiles))
        return EncoderFeatures(rgb, dep, patch, depth3)
