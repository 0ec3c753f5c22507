"""Weight init of the non-backbone parts, as the release: trunc_normal(std 0.02) conv weights, zero bias."""

from __future__ import annotations

from timm.layers import trunc_normal_
from torch import nn


def init_decoder_convs(module: nn.Module) -> None:
    """Apply trunc_normal(0.02) / zero bias to every ``nn.Conv2d`` in ``module`` (in place)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and not m.weight.is_meta:
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
