"""Backbone factory: the official Swin-B, the toy Swin for tests, or any 4-stage timm model.

A backbone here is an ``nn.Module`` with

* ``forward(x [B, 3, H, W]) -> list`` of 4 NCHW maps (strides increasing),
* ``out_channels``: the 4 channel counts,
* ``input_multiple``: H and W must be multiples of it,
* ``set_grad_checkpointing(enable)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .swin import SwinTransformer, swin_b, swin_tiny_test

__all__ = ["TimmBackbone", "build_backbone", "BACKBONES"]

BACKBONES = {"swin_b": swin_b, "swin_tiny_test": swin_tiny_test}
"""Built-in backbones by name; ``timm:<name>`` selects a timm model instead."""


class TimmBackbone(nn.Module):
    """A timm model created with ``features_only=True``; channels come from its ``feature_info``.

    Args:
        name: timm model name.
        pretrained: let timm fetch its pretrained weights (needs network or a local HF cache).
        drop_path_rate: stochastic depth, when the model accepts it.
    """

    def __init__(self, name: str, *, pretrained: bool = False, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        import timm  # slow to import and only for timm:<name> backbones

        kwargs = {"features_only": True, "pretrained": pretrained}
        if drop_path_rate:
            kwargs["drop_path_rate"] = drop_path_rate
        try:
            probe = timm.create_model(name, features_only=True, pretrained=False)
        except Exception as exc:  # noqa: BLE001 - timm raises several types for unknown/unsupported names
            raise ValueError(
                f"timm backbone {name!r} cannot be built with features_only=True: {exc}"
            ) from exc
        n = len(probe.feature_info)
        del probe
        if n < 4:
            raise ValueError(f"timm backbone {name!r} has {n} feature stages; PDFNet needs 4")
        self.model = timm.create_model(name, out_indices=tuple(range(n - 4, n)), **kwargs)
        info = self.model.feature_info
        self.out_channels = tuple(int(c) for c in info.channels())
        self.reductions = tuple(int(r) for r in info.reduction())
        self.input_multiple = max(self.reductions)
        self.name = name

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Forward to timm's own switch when the model has one."""
        if hasattr(self.model, "set_grad_checkpointing"):
            self.model.set_grad_checkpointing(enable)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: [B, 3, H, W] → 4 NCHW maps with ``out_channels`` channels."""
        outs = []
        for f, c in zip(self.model(x), self.out_channels):
            if f.shape[1] != c and f.shape[-1] == c:  # some timm families return NHWC features
                f = f.permute(0, 3, 1, 2)
            outs.append(f)
        return outs


def build_backbone(name: str, *, drop_path_rate: float = 0.0, timm_pretrained: bool = False) -> nn.Module:
    """Build a backbone by name: ``swin_b``, ``swin_tiny_test`` or ``timm:<model name>``."""
    if name.startswith("timm:"):
        return TimmBackbone(name[5:], pretrained=timm_pretrained, drop_path_rate=drop_path_rate)
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)} or 'timm:<name>'")
    model: SwinTransformer = BACKBONES[name](drop_path_rate=drop_path_rate)
    return model
