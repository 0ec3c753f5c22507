"""Learning-rate schedule: timm-style cosine with linear warmup, stepped once per epoch.

The release builds timm's ``CosineLRScheduler(t_initial=epochs, lr_min=min_lr, warmup_lr_init=warmup_lr,
warmup_t=warmup_epochs)`` and steps it per epoch. With ``lr = warmup_lr = min_lr`` (the paper recipe) the
rate is constant. This is a dependency-free re-implementation of that formula (no cycles, no noise,
``warmup_prefix=False``, ``k_decay=1``):

* ``t < warmup_t``:  ``warmup_lr + t * (lr - warmup_lr) / warmup_t``
* ``t < t_initial``: ``min_lr + 0.5 * (lr - min_lr) * (1 + cos(pi * t / t_initial))``
* otherwise:         ``min_lr``
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class CosineWarmupSchedule:
    """Per-epoch learning rate. ``lr_at(epoch)`` is pure; ``apply(optimizer, epoch)`` sets it.

    Args:
        lr: base (peak) learning rate.
        epochs: cosine period ``t_initial`` in epochs.
        warmup_epochs: linear warmup length in epochs (0 = none).
        warmup_lr: learning rate at epoch 0 of the warmup.
        min_lr: floor of the cosine and the rate after ``epochs``.
        kind: ``cosine`` or ``constant`` (always ``lr``).
    """

    lr: float
    epochs: int
    warmup_epochs: int = 0
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    kind: str = "cosine"

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule {self.kind!r} (use cosine or constant)")
        if self.epochs < 1:
            raise ValueError(f"schedule needs epochs >= 1, got {self.epochs}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")

    def lr_at(self, epoch: float) -> float:
        """Learning rate in effect during ``epoch`` (0-based; fractional values are allowed)."""
        if self.kind == "constant":
            return self.lr
        t = float(epoch)
        if t < self.warmup_epochs:
            return self.warmup_lr + t * (self.lr - self.warmup_lr) / self.warmup_epochs
        if t < self.epochs:
            return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * t / self.epochs))
        return self.min_lr

    def apply(self, optimizer: torch.optim.Optimizer, epoch: float) -> float:
        """Set every param group's ``lr`` to ``lr_at(epoch)`` and return it."""
        lr = self.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"lr": self.lr, "epochs": self.epochs, "warmup_epochs": self.warmup_epochs,
                "warmup_lr": self.warmup_lr, "min_lr": self.min_lr, "kind": self.kind}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            if not hasattr(self, k):
                raise KeyError(f"unexpected schedule state key {k!r}")
            setattr(self, k, v)
