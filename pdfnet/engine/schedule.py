"""Learning-rate schedule: timm-style cosine with linear warmup, stepped once per epoch; and the
:class:`EpochPlan` that maps the training loop's one step counter to epochs.

The release builds timm's ``CosineLRScheduler(t_initial=epochs, lr_min=min_lr, warmup_lr_init=warmup_lr,
warmup_t=warmup_epochs)`` and steps it per epoch. With ``lr = warmup_lr = min_lr`` (the paper recipe) the
rate is constant. This is a dependency-free re-implementation of that formula (no cycles, no noise,
``warmup_prefix=False``, ``k_decay=1``):

* ``t < warmup_t``:  ``warmup_lr + t * (lr - warmup_lr) / warmup_t``
* ``t < t_initial``: ``min_lr + 0.5 * (lr - min_lr) * (1 + cos(pi * t / t_initial))``
* otherwise:         ``min_lr``
"""

from __future__ import annotations

import bisect
import functools
import itertools
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


@dataclass(frozen=True)
class EpochPlan:
    """How many optimizer steps each epoch has, and the one step counter → ``(epoch, steps into it)``.

    The training loop counts only optimizer steps; the epoch (for the learning-rate schedule and the
    sampler's permutation) and the data position inside it are derived here. Epochs may differ in length
    (e.g. the release's hard-half epochs train on half the samples).

    Args:
        steps: optimizer steps of each epoch, in order (each >= 1).
        max_steps: stop after this many steps (None: after the last epoch).
    """

    steps: tuple[int, ...]
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if not self.steps or min(self.steps) < 1:
            raise ValueError(f"every epoch needs >= 1 step, got {self.steps[:8]}")

    @classmethod
    def uniform(cls, steps_per_epoch: int, epochs: int, max_steps: int | None = None) -> EpochPlan:
        return cls(tuple([steps_per_epoch] * epochs), max_steps)

    @property
    def total(self) -> int:
        """Steps of the run: the sum of the epochs, capped by ``max_steps``."""
        n = sum(self.steps)
        return n if self.max_steps is None else min(n, self.max_steps)

    def locate(self, step: int) -> tuple[int, int]:
        """``(epoch, steps of it done)`` after ``step`` steps; an epoch end is the next epoch's start."""
        i = bisect.bisect_right(self._starts, step) - 1
        return i, step - self._starts[i]

    def is_epoch_end(self, step: int) -> bool:
        """Whether ``step`` completes an epoch."""
        return step > 0 and self.locate(step)[1] == 0

    @functools.cached_property
    def _starts(self) -> list[int]:
        return [0, *itertools.accumulate(self.steps)]
