"""Up-conv head (docs/architecture.md): the full-resolution shallow branch and the final logits P0.

1. S = CRS(Conv4×4/4(resize(cat[RGB, depth×3] → 4S)))  [B, emb, S, S];
2. F = CRS(resize(M1 → S/2) + resize(S → S/2));
3. F = CRS(resize(F → S) + S);
4. P0 = Conv3×3(emb → 1)(F).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import CRS, resize
from .upconv import upsample4_conv_fast

__all__ = ["UpConvHead"]


class UpConvHead(nn.Module):
    """Shallow stem + two fuse CRS + the output conv.

    Args:
        emb: feature width.
        in_chans: channels of cat[RGB, depth×3] (6).
        fast_stem: compute resize ×4 + the stride-4 stem conv with the exact equivalent in
            :mod:`.upconv` (no 4S×4S tensor; equal to float rounding). Also settable as an attribute.
    """

    def __init__(self, emb: int = 128, in_chans: int = 6, fast_stem: bool = False) -> None:
        super().__init__()
        self.fast_stem = fast_stem
        self.stem = nn.Conv2d(in_chans, emb, kernel_size=4, stride=4)
        self.stem_crs = CRS(emb, emb)
        self.fuse1 = CRS(emb, emb)
        self.fuse2 = CRS(emb, emb)
        self.out = nn.Conv2d(emb, 1, 3, padding=1)

    def forward(self, image: torch.Tensor, depth3: torch.Tensor, m1: torch.Tensor) -> torch.Tensor:
        """image [B,3,S,S], depth3 [B,3,S,S] (normalised), m1 [B,emb,h,h] → P0 logits [B,1,S,S] (4h = S)."""
        h, w = image.shape[-2:]
        x = torch.cat([image, depth3], dim=1)
        if self.fast_stem:
            stem = upsample4_conv_fast(x, self.stem.weight, self.stem.bias)
        else:
            stem = self.stem(resize(x, (4 * h, 4 * w)))
        shallow = self.stem_crs(stem)
        mid = (2 * m1.shape[-2], 2 * m1.shape[-1])
        f = self.fuse1(resize(m1, mid) + resize(shallow, mid))
        f = self.fuse2(resize(f, shallow.shape[-2:]) + shallow)  # = 2× upsample when M1 is S/4
        return self.out(f)
