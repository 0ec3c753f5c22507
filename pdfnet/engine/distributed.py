"""Distributed helpers for ``torchrun`` (DDP): set-up, rank queries, reductions, a resumable sampler.

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``; without them
everything runs as a single process (world size 1) and all helpers are no-ops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from pdfnet.errors import UserError
from pdfnet.utils.ranks import torchrun_env


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group if launched by ``torchrun`` (nccl on CUDA, gloo on CPU).

    On CUDA the local rank picks the GPU; the caller should use :func:`local_device`.
    """
    rank, world, local_rank = torchrun_env()
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank)


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    """``cuda`` → ``cuda:<local_rank>`` under DDP; anything else unchanged."""
    if device.type == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return device


def current_info() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), torchrun_env()[2])
    return DistInfo()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over ranks (identity in a single process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        x /= dist.get_world_size()
    return x


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in a single process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` that can start part-way through an epoch (for exact mid-epoch resume).

    The permutation depends only on ``seed + epoch`` (not on the world size) and rank ``r`` takes
    ``indices[r::world]``, so with ``batch_size`` per rank the global batch ``k`` is
    ``indices[k*B*W:(k+1)*B*W]`` for any ``W``: one process with batch ``B*W`` sees the same samples
    as ``W`` processes with batch ``B``.

    ``set_start(n)`` skips the first ``n`` indices of this rank's list for the current epoch only; the
    next ``set_epoch`` clears it.

    ``set_subset(indices)`` restricts the epoch to those dataset indices (``train.hard_half``): the same
    ``seed + epoch`` permutation of the whole dataset, filtered, then padded and split over ranks as usual.
    The next ``set_epoch`` clears it too.
    """

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.start = 0
        self.subset: list[int] | None = None

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.start = 0
        self.subset = None

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def set_subset(self, indices: list[int] | None) -> None:
        self.subset = None if indices is None else sorted(set(int(i) for i in indices))

    def _rank_indices(self) -> list[int]:
        if self.subset is None:
            return list(super().__iter__())
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.dataset), generator=g).tolist()
        else:
            order = list(range(len(self.dataset)))
        keep = set(self.subset)
        indices = [i for i in order if i in keep]
        n = self._subset_per_rank() * self.num_replicas
        if not self.drop_last and indices:
            indices += (indices * (n // len(indices) + 1))[: n - len(indices)]
        return indices[:n][self.rank:n:self.num_replicas]

    def _subset_per_rank(self) -> int:
        n = len(self.subset or [])
        if self.drop_last:
            return n // self.num_replicas
        return -(-n // self.num_replicas)

    def __iter__(self) -> Iterator[int]:
        return iter(self._rank_indices()[self.start:])

    def __len__(self) -> int:
        per_rank = self.num_samples if self.subset is None else self._subset_per_rank()
        return max(0, per_rank - self.start)


def run_on_main(info: DistInfo, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` on rank 0 only, and raise a :class:`~pdfnet.errors.UserError` it raises on every rank
    (so no rank waits forever in the next collective). Returns ``fn``'s result on rank 0, None elsewhere."""
    if not info.enabled:
        return fn(*args, **kwargs)
    error, result = None, None
    if info.is_main:
        try:
            result = fn(*args, **kwargs)
        except UserError as e:
            error = e
    message = all_gather_objects(str(error) if error is not None else None)[0]
    if error is not None:
        raise error
    if message is not None:
        raise UserError(message)
    return result
