"""Ranks under ``torchrun``, one owner: reading ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and splitting work
over ranks. Used by DDP set-up (:mod:`pdfnet.engine.distributed`), evaluation's sampler
(:class:`pdfnet.data.ShardSampler`) and the depth precompute. Torch-free."""

from __future__ import annotations

import os

from pdfnet.errors import UserError

__all__ = ["rank_shard", "torchrun_env"]


def torchrun_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from ``torchrun``'s environment; ``(0, 1, 0)`` when absent.

    Raises:
        UserError: non-integer values, or a rank outside ``[0, world_size)``.
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0")) if world > 1 else 0
        local = int(os.environ.get("LOCAL_RANK", str(rank))) if world > 1 else 0
    except ValueError:
        raise UserError("RANK / WORLD_SIZE / LOCAL_RANK must be integers") from None
    rank_shard(0, rank, world)  # validates
    return rank, world, local


def rank_shard(n: int, rank: int, world_size: int) -> range:
    """Indices ``rank, rank + world_size, …`` of ``range(n)``: disjoint, covering, no padding.

    Raises:
        UserError: ``world_size < 1`` or ``rank`` outside ``[0, world_size)``.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise UserError(f"invalid RANK={rank} / WORLD_SIZE={world_size}")
    return range(rank, n, world_size)
