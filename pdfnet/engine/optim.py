"""AdamW with the release's two parameter groups (no weight decay on 1-D tensors and biases)."""

from __future__ import annotations

import torch
from torch import nn

from pdfnet.config.schema import OptimConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into ``[decay, no_decay]`` groups.

    ``no_decay`` holds every parameter with ``ndim <= 1`` (norm weights, biases, scalars) and every
    parameter whose name ends in ``.bias``; the rest (conv/linear weights, position embeddings with
    ndim > 1) get ``weight_decay``. Frozen parameters (``requires_grad=False``) are left out. Each group
    carries a ``name`` key for logging.
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]


def build_optimizer(model: nn.Module, cfg: OptimConfig,
                    device: torch.device | None = None) -> torch.optim.AdamW:
    """AdamW(lr, betas, eps) over :func:`param_groups`; ``fused`` only when asked and on CUDA."""
    if len(cfg.betas) != 2:
        raise ValueError(f"optim.betas must have two values, got {cfg.betas}")
    fused = bool(cfg.fused and device is not None and device.type == "cuda")
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps,
        fused=fused or None,
    )
