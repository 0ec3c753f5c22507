"""Mask decoder (the release's ``PDF_decoder``): side₅ from the global tokens, then four FSE steps from deep
to shallow, each followed by a mix CRS(3·emb → emb) at the patch resolution and a side head.

Indexing follows the release: ``fse[0]`` is the deepest step (L4 + G), ``fse[3]`` the shallowest (L1);
``mix[k]`` is the mix at level L(k+1) (so ``mix[3]`` follows ``fse[0]``); ``side[k]`` produces
P(k+1) (``side[4]`` = P5 from the global tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from .encoder import EncoderFeatures
from .fse import FSE
from .layers import CRS, resize_like

__all__ = ["DecoderOutput", "MaskDecoder"]


class DecoderOutput(NamedTuple):
    """Side logits P1..P5 (native sizes, P1 largest) and the last mix map M1 [B, emb, S/4, S/4]."""

    side_logits: tuple[torch.Tensor, ...]
    m1: torch.Tensor


class MaskDecoder(nn.Module):
    """FSE ×4 + mix CRS ×4 + 5 side heads.

    Args:
        emb: feature width (128).
        pool_ratios: FSE key/value pool factor per step, deep → shallow ((1, 1, 2, 2)).
        patch_ratio: patch grid (8).
        dropout: CoA dropout.
        boundary, patch_weight, dropout_before_norm: the FSE behaviour parts (see :mod:`.fse`); one
            boundary and one patch-weight part serve all four steps (they hold no parameters).
    """

    def __init__(
        self,
        emb: int = 128,
        *,
        pool_ratios: Sequence[int] = (1, 1, 2, 2),
        patch_ratio: int = 8,
        dropout: float = 0.1,
        boundary: nn.Module | None = None,
        patch_weight: nn.Module | None = None,
        dropout_before_norm: bool = True,
    ) -> None:
        super().__init__()
        if len(pool_ratios) != 4:
            raise ValueError(f"pool_ratios needs 4 entries (deep → shallow), got {list(pool_ratios)}")
        self.fse = nn.ModuleList(
            FSE(
                2 * emb,
                2 * emb,
                2 * emb,
                emb,
                pool_ratio=(p, p, p),
                patch_ratio=patch_ratio,
                dropout=dropout,
                boundary=boundary,
                patch_weight=patch_weight,
                dropout_before_norm=dropout_before_norm,
            )
            for p in pool_ratios
        )
        self.mix = nn.ModuleList(CRS(3 * emb, emb) for _ in range(4))
        self.side = nn.ModuleList(nn.Conv2d(emb, 1, 3, padding=1) for _ in range(5))

    def forward(self, feats: EncoderFeatures) -> DecoderOutput:
        """Run the decoder on the encoder's three streams.

        Returns:
            :class:`DecoderOutput`: P1 [B,1,S/4,S/4], P2 [S/8], P3 [S/16], P4 [S/32], P5 [S/32]
            (at multiples of 256).
        """
        rgb, dep, pat = feats.rgb, feats.depth, feats.patch
        p5 = self.side[4](resize_like(rgb.g, pat.g) + resize_like(dep.g, pat.g) + pat.g)
        # level inputs deep → shallow: (previous-level maps or G, this level's maps)
        levels = [(rgb.l4, dep.l4, pat.l4), (rgb.l3, dep.l3, pat.l3), (rgb.l2, dep.l2, pat.l2),
                  (rgb.l1, dep.l1, pat.l1)]
        prev = (rgb.g, dep.g, pat.g)
        pred = p5
        sides = [p5]
        m = p5
        for step, (li, ld, lp) in enumerate(levels):
            xi = torch.cat([resize_like(prev[0], li), li], dim=1)
            xd = torch.cat([resize_like(prev[1], ld), ld], dim=1)
            xp = torch.cat([resize_like(prev[2], lp), lp], dim=1)
            oi, od, op = self.fse[step](xi, xd, xp, pred)
            level = 3 - step
            m = self.mix[level](torch.cat([resize_like(oi, op), resize_like(od, op), op], dim=1))
            pred = self.side[level](m)
            sides.append(pred)
            prev = (oi, od, op)
        # sides = [P5, P4, P3, P2, P1] → (P1, ..., P5)
        return DecoderOutput(tuple(reversed(sides)), m)
