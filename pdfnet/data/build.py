"""Config → datasets and DataLoaders (the one place that reads :class:`~pdfnet.config.schema.DataConfig`).

Shuffling is a pure function of ``(seed, epoch)`` too (a ``DistributedSampler`` with explicit
``num_replicas``/``rank``, which needs no process group), so with the dataset's ``(seed, epoch, index)``
generators a whole epoch is reproducible for resume and DDP. Evaluation shards with
:class:`ShardSampler`, which never pads or duplicates samples (padding would bias DDP metrics).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator, Sequence
from multiprocessing.context import BaseContext

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from pdfnet.config.schema import DataConfig
from pdfnet.data.check import CheckReport, check_splits
from pdfnet.data.dataset import DISDataset
from pdfnet.data.dis5k import split_depths
from pdfnet.errors import UserError
from pdfnet.utils.parallel import mp_context
from pdfnet.utils.ranks import rank_shard

log = logging.getLogger(__name__)


def resolve_target_depth(cfg: DataConfig, split: str) -> str | None:
    """``cfg.target_depth``, or ``cfg.eval_depth`` when the target folder is absent and
    ``cfg.allow_target_fallback`` is set (logged as a warning)."""
    target = cfg.target_depth
    if not target or not cfg.allow_target_fallback:
        return target or None
    present = split_depths(cfg.root, split)
    if target not in present and "*" not in present:  # "*": a list file's depth column serves any name
        log.warning("%s: depth_%s/ not found; using depth_%s as the integrity-loss target (fallback)",
                    split, target, cfg.eval_depth)
        return cfg.eval_depth
    return target


def holdout_part(cfg: DataConfig) -> bool:
    """Whether validation is a hold-out of ``cfg.train_split`` (``val_fraction`` > 0, no ``val_split``).

    Raises:
        UserError: ``val_fraction`` outside [0, 1), or set together with a ``val_split``.
    """
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise UserError(f"data.val_fraction must be in [0, 1), got {cfg.val_fraction}")
    if cfg.val_fraction > 0 and cfg.val_split:
        raise UserError(f"data.val_fraction={cfg.val_fraction} holds out part of data.train_split for "
                        f"validation, but data.val_split={cfg.val_split!r} is set too; set "
                        "data.val_split=null to hold out, or data.val_fraction=0")
    return cfg.val_fraction > 0


def build_train_dataset(cfg: DataConfig, seed: int = 0, *, check: bool = True,
                        progress: bool = True) -> DISDataset:
    """The training split of ``cfg`` with the release's augmentations (``cfg.augment``), less the
    held-out validation part when ``cfg.val_fraction`` is set. With ``check``, every file it will read
    is checked first (:func:`check_data`)."""
    held = holdout_part(cfg)
    if check:
        check_data(cfg, train=True, progress=progress)
    return DISDataset(
        cfg.root, cfg.train_split, size=cfg.size, train=True, input_depths=cfg.train_depths,
        eval_depth=cfg.eval_depth, target_depth=resolve_target_depth(cfg, cfg.train_split),
        augment=cfg.augment, seed=seed, part="train" if held else "all", val_fraction=cfg.val_fraction,
        val_seed=cfg.val_seed,
    )


def build_eval_dataset(cfg: DataConfig, split: str | None = None, size: int | None = None, *,
                       check: bool = True, progress: bool = True) -> DISDataset:
    """An evaluation split (default ``cfg.val_split``, or the held-out part of ``cfg.train_split`` with
    ``cfg.val_fraction``): no augmentation, ``eval_depth`` input, no ``depth_target``. With ``check``,
    every file it will read is checked first (:func:`check_data`)."""
    part = "all"
    if split is None:
        if holdout_part(cfg):
            split, part = cfg.train_split, "val"
        elif not cfg.val_split:
            raise UserError("no validation data: set data.val_split, or data.val_fraction to hold out part "
                            "of data.train_split, or train.val_every_epochs=0 to train without validation")
        else:
            split = cfg.val_split
    if check:
        if part == "val":
            check_data(cfg, validation=True, progress=progress)
        else:
            check_data(cfg, eval_splits=[split], progress=progress)
    return DISDataset(
        cfg.root, split, size=size or cfg.size, train=False, input_depths=(), eval_depth=cfg.eval_depth,
        target_depth=None, augment=False, part=part, val_fraction=cfg.val_fraction, val_seed=cfg.val_seed,
    )


def build_datasets(cfg: DataConfig, seed: int = 0) -> tuple[DISDataset, DISDataset]:
    """``(train, val)`` datasets for ``cfg.train_split`` / ``cfg.val_split`` (or its hold-out)."""
    return build_train_dataset(cfg, seed), build_eval_dataset(cfg)


def check_data(cfg: DataConfig, *, train: bool = False, validation: bool = False,
               eval_splits: Sequence[str] = (), progress: bool = True) -> CheckReport:
    """Check, before any work, every file a run will read (:func:`pdfnet.data.check.check_splits`).

    Args:
        cfg: the data config.
        train: check ``cfg.train_split`` with the training depths and the integrity-loss target.
        validation: check the validation data (``cfg.val_split``, or the eval depth of the hold-out).
        eval_splits: splits that model evaluation reads with ``cfg.eval_depth``.
        progress: progress bar on large sets.

    Returns:
        The report (its warnings are logged, one line each).

    Raises:
        DataCheckError: one line naming the first problem and counting the others.
    """
    depths: dict[str, list[str]] = {}

    def need(split: str, names: Sequence[str]) -> None:
        depths.setdefault(split, [])
        depths[split] += [n for n in names if n and n not in depths[split]]

    held = holdout_part(cfg)
    if train:
        need(cfg.train_split, [*cfg.train_depths, resolve_target_depth(cfg, cfg.train_split) or ""])
    if validation:
        if held:
            need(cfg.train_split, [cfg.eval_depth])
        elif cfg.val_split:
            need(cfg.val_split, [cfg.eval_depth])
    for split in eval_splits:
        need(split, [cfg.eval_depth])
    report = check_splits(cfg.root, list(depths), depths=depths, progress=progress)
    for split, issue in report.warnings:
        log.warning("%s: %s", split, issue.message)
    report.raise_if_failed()
    return report


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, …`` of ``range(n)``: disjoint shards, no padding
    (:func:`pdfnet.utils.ranks.rank_shard`)."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = rank_shard(n, rank, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: derive numpy/random seeds from the worker's torch seed (which the
    loader's generator fixes) and run OpenCV single-threaded. The dataset itself does not use global
    RNGs; this protects user code."""
    cv2.setNumThreads(1)
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def loader_context(num_workers: int) -> BaseContext | None:
    """The start method for DataLoader workers (None when loading in the main process).

    Workers are never forked from the calling process: OpenCV's thread pool (started by any earlier cv2
    call, e.g. the pre-flight data check) hangs a forked child in its first cv2 call. They start from a
    forkserver that has imported :mod:`pdfnet.data` once (spawn where there is no forkserver)."""
    return mp_context(preload=["pdfnet.data"]) if num_workers > 0 else None


def build_dataloader(
    dataset: Dataset,
    batch_size: int,
    *,
    train: bool,
    num_workers: int = 0,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool | None = None,
    pin_memory: bool = False,
    persistent_workers: bool | None = None,
) -> DataLoader:
    """A DataLoader whose sample order is a function of ``(seed, epoch)``.

    Args:
        dataset: usually a :class:`DISDataset`.
        batch_size: per-process batch size.
        train: shuffle (seeded, per epoch) and drop the last partial batch by default; eval keeps order
            and shards without padding.
        num_workers: loader processes (0 = load in the main process).
        seed: shuffle seed (the dataset has its own augmentation seed).
        rank, world_size: this process's shard for DDP (no process group needed).
        drop_last: override the default (train: True, eval: False).
        pin_memory: pin batches (useful with CUDA).
        persistent_workers: keep workers across epochs (default: ``num_workers > 0``).

    Call :func:`set_epoch` before iterating each epoch.
    """
    drop_last = train if drop_last is None else drop_last
    if train:
        sampler: Sampler[int] = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                                   shuffle=True, seed=seed, drop_last=drop_last)
    else:
        sampler = ShardSampler(len(dataset), rank, world_size)
    workers = max(0, min(num_workers, os.cpu_count() or 1))
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
        pin_memory=pin_memory, worker_init_fn=seed_worker if workers else None,
        multiprocessing_context=loader_context(workers),
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=workers > 0 and (persistent_workers is None or persistent_workers),
    )


def shutdown_workers(loader: DataLoader) -> None:
    """Stop ``loader``'s worker processes now, persistent ones included (a no-op without workers).

    Call it when a run ends or fails: otherwise the workers stay until the loader is garbage-collected,
    which an exception's reference cycle can delay past interpreter exit, where joining workers that
    ignore SIGTERM hangs. torch has no public call for this; it is the shutdown the iterator runs itself
    when it is deleted.
    """
    it = getattr(loader, "_iterator", None)
    if it is not None:
        shutdown = getattr(it, "_shutdown_workers", None)
        if callable(shutdown):
            shutdown()
        loader._iterator = None


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Set the epoch on the loader's sampler and dataset (whichever support ``set_epoch``)."""
    for obj in (loader.sampler, loader.dataset):
        fn = getattr(obj, "set_epoch", None)
        if callable(fn):
            fn(epoch)


__all__ = [
    "ShardSampler",
    "build_dataloader",
    "loader_context",
    "build_datasets",
    "build_eval_dataset",
    "build_train_dataset",
    "check_data",
    "holdout_part",
    "resolve_target_depth",
    "seed_worker",
    "set_epoch",
    "shutdown_workers",
]
