"""Make the transformers DAv2 port compute what the official DAv2 code computes.

One known numerical difference remains in the transformers port: the DINOv2 backbone resizes its
37×37 position-embedding grid to the patch grid with ``size=(h, w)``, while the official DINOv2 code
(which DAv2 ships) resizes with ``scale_factor=((h + 0.1) / 37, (w + 0.1) / 37)`` (its
``interpolate_offset``), which samples the grid at slightly different points. Both skip the resize for
a square input of exactly the pretraining size (518×518). DIS images are rarely square, so every
depth map PDFNet was trained on went through the official resize; :func:`use_official_pos_interp`
swaps it into a loaded model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

OFFICIAL_INTERPOLATE_OFFSET = 0.1


def _official_interp(emb: nn.Module, offset: float):
    def interpolate_pos_encoding(embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        pos = emb.position_embeddings  # [1, 1 + N, C]
        n_pos = pos.shape[1] - 1
        n_patch = embeddings.shape[1] - 1
        if n_patch == n_pos and height == width:
            return pos
        ph, pw = emb.patch_embeddings.patch_size
        side = math.sqrt(n_pos)
        grid = pos[:, 1:].float().reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2)
        h0, w0 = height // ph + offset, width // pw + offset
        grid = F.interpolate(grid, scale_factor=(h0 / side, w0 / side), mode="bicubic", align_corners=False)
        if grid.shape[-2:] != (height // ph, width // pw):  # pragma: no cover - guarded by the offset
            raise RuntimeError(f"position grid {tuple(grid.shape[-2:])} != patch grid")
        grid = grid.permute(0, 2, 3, 1).reshape(1, -1, pos.shape[-1]).to(pos.dtype)
        return torch.cat((pos[:, :1], grid), dim=1)

    return interpolate_pos_encoding


def use_official_pos_interp(
    model: nn.Module, enable: bool = True, offset: float = OFFICIAL_INTERPOLATE_OFFSET
) -> bool:
    """Switch a transformers DINOv2-backed depth model (DAv1/DAv2) to the official position-embedding
    resize (``enable``) or back to transformers' own; returns True if the model has that backbone.

    Models without a DINOv2 backbone (or a future transformers layout) are left unchanged.
    """
    backbone = getattr(model, "backbone", None)
    emb = getattr(backbone, "embeddings", None)
    cfg = getattr(backbone, "config", None)
    if emb is None or getattr(cfg, "model_type", None) != "dinov2":
        return False
    if not hasattr(emb, "interpolate_pos_encoding") or getattr(emb, "position_embeddings", None) is None:
        return False
    if enable:
        emb.interpolate_pos_encoding = _official_interp(emb, offset)
    elif "interpolate_pos_encoding" in vars(emb):
        del emb.interpolate_pos_encoding  # back to the class method
    return True
