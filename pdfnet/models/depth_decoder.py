"""Train-only depth-refinement decoder (docs/architecture.md); its outputs Q0..Q4 feed the SiLog loss.

March-2025 (the released checkpoint): per level L_k = RGB_k + Depth_k + resize(Patch_k → RGB_k) (the same
sum for G); De4 = Dec₀(cat[G, L4]); De_k = Dec(cat[resize(De_{k+1}), L_k]); each Dec is
CRS(2e → 2e) → CRS(2e → e). Shallow S = Conv3×3(3 → e)(RGB) at full size, no norm/activation;
F = De1 + resize(S); F = CRS(resize(F, 2×)); F = resize(F + resize(S), 2×); F = CRS(F); Q0 = Conv(F).

Oct-2025: levels are concatenated (3e per level, so Dec₀ takes 6e, the others 4e), Dec = CRS(in → 2e) →
CRS(2e → e), and the shallow conv sees cat[RGB, depth×3] (6 channels).

The two behaviours are constructor choices (``level_fusion``, ``stem_sees_depth``) that the factory
maps from the config's release name; ``forward`` has no release branches.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .encoder import EncoderFeatures
from .layers import CRS, resize, resize_like

__all__ = ["DepthDecoder"]


class DepthDecoder(nn.Module):
    """The depth decoder.

    Args:
        emb: feature width e (128).
        level_fusion: how a level's three streams (RGB, depth, resized patch) merge: ``sum`` (e channels;
            March-2025) or ``concat`` (3e channels; Oct-2025).
        stem_sees_depth: the shallow conv reads cat[RGB, depth×3] (Oct-2025) instead of RGB alone.
    """

    def __init__(self, emb: int = 128, *, level_fusion: Literal["sum", "concat"] = "sum",
                 stem_sees_depth: bool = False) -> None:
        super().__init__()
        if level_fusion not in ("sum", "concat"):
            raise ValueError(f"level_fusion must be 'sum' or 'concat', got {level_fusion!r}")
        self.level_fusion = level_fusion
        self.stem_sees_depth = stem_sees_depth
        width = emb if level_fusion == "sum" else 3 * emb  # channels of one fused level
        ins = [2 * width] + [emb + width] * 3  # Dec₀ sees cat[G, L4]; the others cat[De, L_k]
        stem_in = 6 if stem_sees_depth else 3
        self.blocks = nn.ModuleList(nn.Sequential(CRS(c, 2 * emb), CRS(2 * emb, emb)) for c in ins)
        self.stem = nn.Conv2d(stem_in, emb, kernel_size=3, padding=1)
        self.fuse1 = CRS(emb, emb)
        self.fuse2 = CRS(emb, emb)
        self.out = nn.Conv2d(emb, 1, 3, padding=1)
        self.side = nn.ModuleList(nn.Conv2d(emb, 1, 3, padding=1) for _ in range(4))

    def _levels(self, feats: EncoderFeatures) -> list[torch.Tensor]:
        """Per level [L1, L2, L3, L4, G] at the global-stream sizes."""
        out = []
        for r, d, p in zip(feats.rgb, feats.depth, feats.patch):
            p = resize_like(p, r)
            out.append(r + d + p if self.level_fusion == "sum" else torch.cat([r, d, p], dim=1))
        return out

    def forward(self, image: torch.Tensor, feats: EncoderFeatures) -> tuple[torch.Tensor, ...]:
        """image [B,3,S,S] (normalised RGB) + features → (Q0 [B,1,S/2,S/2], Q1..Q4 at L1..L4 sizes)."""
        l1, l2, l3, l4, g = self._levels(feats)
        de4 = self.blocks[0](torch.cat([g, l4], dim=1))
        de3 = self.blocks[1](torch.cat([resize_like(de4, l3), l3], dim=1))
        de2 = self.blocks[2](torch.cat([resize_like(de3, l2), l2], dim=1))
        de1 = self.blocks[3](torch.cat([resize_like(de2, l1), l1], dim=1))
        stem_in = torch.cat([image, feats.depth_in], dim=1) if self.stem_sees_depth else image
        shallow = self.stem(stem_in)
        f = de1 + resize_like(shallow, de1)
        f = self.fuse1(resize(f, (2 * f.shape[-2], 2 * f.shape[-1])))
        f = f + resize_like(shallow, f)
        f = self.fuse2(resize(f, (2 * f.shape[-2], 2 * f.shape[-1])))
        q0 = self.out(f)
        return (q0, self.side[0](de1), self.side[1](de2), self.side[2](de3), self.side[3](de4))
