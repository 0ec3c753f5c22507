"""``DISDataset``: DIS5K-layout samples resized, augmented and normalised as the PDFNet release does.

Each item is a dict that ``torch.utils.data.default_collate`` batches directly:

========================  ===========================================================================
``image``                 float32 ``[3, S, S]``, RGB, ImageNet-normalised
``gt``                    float32 ``[1, S, S]`` in [0, 1] (binary before augmentation, soft edges after)
``depth``                 float32 ``[1, S, S]`` in [0, 1]; train: uniform pick among ``input_depths``;
                          eval: ``eval_depth``
``depth_target``          float32 ``[1, S, S]`` in [0, 1] from ``target_depth`` (absent when it is None)
``stem``                  str
``index``                 int: the sample's index in the dataset (``train.hard_half`` books losses by it)
``orig_size``             int64 ``[2]``: the image's original (H, W)
``gt_path``               str: the original-resolution GT file (for evaluation at full size)
``gt_alpha``              bool: the GT is the alpha channel of ``gt_path`` (an RGBA image)
========================  ===========================================================================

Resizing follows the release (``dataloaders/Mydataset.py``): the image goes to S×S ignoring the aspect ratio
(bilinear, ``align_corners=True``), the GT with nearest, depth maps bilinear with ``align_corners=True``.
Training augmentations are :func:`pdfnet.data.transforms.augment_train`.

Reproducibility: every random choice of a sample (its depth model and all augmentation parameters) comes
from a generator seeded with ``(seed, epoch, index)``, so a resumed or distributed run sees exactly the
same samples whatever the worker count. Call :meth:`DISDataset.set_epoch` before iterating each epoch;
the epoch is kept in shared memory so persistent DataLoader workers see it too.

Data problems are never silent:

* unreadable / corrupt image, mask or depth file → :class:`~pdfnet.utils.io.ImageReadError` naming it;
* GT size ≠ image size → :class:`~pdfnet.errors.UserError` naming both files and sizes;
* a depth map whose aspect ratio differs from the image's by more than 2 % → ``UserError`` (stale or
  wrong depth); a depth map of the same aspect ratio but another resolution is accepted (it is resized
  to S×S anyway);
* non-binary GT (anti-aliased or JPEG-damaged masks) → **documented conversion**: the mask is binarised
  as ``value > 128`` (the same rule the DIS metrics apply to GT), before resizing. The release instead
  used ``value / 255``; pass ``binarize_gt=False`` to get that behaviour.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, get_worker_info

from pdfnet.data.dis5k import GT_THRESHOLD, Sample, check_depth_aspect, discover_split, hold_out
from pdfnet.data.transforms import augment_train
from pdfnet.errors import UserError
from pdfnet.utils.io import read_alpha, read_gray, read_gray_float, read_rgb
from pdfnet.utils.normalize import normalize_image

_worker_ready = False


def _single_threaded_cv2_in_workers() -> None:
    """In a DataLoader worker, run OpenCV single-threaded (once per process): a forked worker must not
    use the OpenCV thread pool it inherited from the parent (it can hang), and the loader supplies the
    parallelism anyway. Works with any DataLoader, whatever its ``worker_init_fn``."""
    global _worker_ready
    if not _worker_ready and get_worker_info() is not None:
        cv2.setNumThreads(1)
        _worker_ready = True


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one sample of one epoch: a pure function of ``(seed, epoch, index)``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)]))


def _resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """``[C, H, W]`` → ``[C, size, size]`` (bilinear with align_corners=True, or legacy nearest)."""
    if x.shape[-2:] == (size, size):
        return x
    if mode == "nearest":
        return F.interpolate(x[None], size=(size, size), mode="nearest")[0]
    return F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=True)[0]


class DISDataset(Dataset):
    """A DIS5K-layout split as training or evaluation samples (see the module docstring).

    Args:
        root: DIS5K root (``<root>/<split>/im|images`` …) or the folder holding ``DIS5K/``.
        split: split folder, e.g. ``DIS-TR``.
        size: side S of the square network input.
        train: training mode (random depth pick and augmentations) or evaluation mode.
        input_depths: depth names drawn uniformly per training sample (release: small, base, large).
        eval_depth: the depth name used in evaluation mode.
        target_depth: depth name of the integrity-loss target D*; None → no ``depth_target`` key.
        augment: apply the release augmentations (train mode only).
        seed: base seed of the per-sample generators.
        binarize_gt: binarise masks at ``> 128`` (default) or keep ``value / 255`` like the release.
        zoom_border: up-crop border in pixels (None: the release's 30 px scaled to ``size``).
        part: ``all`` samples of the split, or the ``train`` / ``val`` part of a seeded hold-out of
            ``val_fraction`` of them (:func:`pdfnet.data.dis5k.hold_out`, seed ``val_seed``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        size: int = 1024,
        train: bool = False,
        input_depths: Sequence[str] = ("small", "base", "large"),
        eval_depth: str = "large",
        target_depth: str | None = None,
        augment: bool = True,
        seed: int = 0,
        *,
        binarize_gt: bool = True,
        zoom_border: int | None = None,
        part: Literal["all", "train", "val"] = "all",
        val_fraction: float = 0.0,
        val_seed: int = 0,
    ) -> None:
        if size < 8:
            raise UserError(f"data size must be >= 8, got {size}")
        self.root = str(root)
        self.split = split
        self.size = int(size)
        self.train = bool(train)
        self.input_depths = tuple(input_depths) if train else ()
        self.eval_depth = eval_depth
        self.target_depth = target_depth
        self.augment = bool(augment) and self.train
        self.seed = int(seed)
        self.binarize_gt = binarize_gt
        self.zoom_border = zoom_border
        if self.train and not self.input_depths:
            raise UserError("input_depths must name at least one depth folder for training")
        needed = list(self.input_depths) if self.train else [eval_depth]
        if target_depth is not None:
            needed.append(target_depth)
        self.index = discover_split(root, split, needed, require_gt=True)
        self.samples: tuple[Sample, ...] = self.index.samples
        if part != "all":
            kept = hold_out(self.samples, val_fraction, val_seed)[part == "val"]
            self.samples = kept
        self.part = part
        # Shared so that persistent DataLoader workers see set_epoch() calls made in the main process.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws the next items use (call before each epoch)."""
        self._epoch.fill_(int(epoch))

    def _load_depth(
        self, path: os.PathLike, img_hw: tuple[int, int], image_path: os.PathLike
    ) -> torch.Tensor:
        d = read_gray_float(path)
        check_depth_aspect(d.shape, img_hw, f"{self.split}: depth map {path}", f"image {image_path}")
        return _resize(torch.from_numpy(d)[None], self.size, "bilinear")

    def load(self, index: int, depth_name: str) -> dict[str, torch.Tensor]:
        """Read and resize one sample without augmentation or normalisation.

        Returns:
            ``image`` ``[3, S, S]`` in [0, 1], ``gt`` ``[1, S, S]``, ``depth`` ``[1, S, S]``, optional
            ``depth_target`` ``[1, S, S]``, and ``orig_size`` ``[2]``.
        """
        s = self.samples[index]
        rgb = read_rgb(s.image)
        h, w = rgb.shape[:2]
        gt_u8 = read_alpha(s.gt) if s.gt_alpha else read_gray(s.gt)
        if gt_u8.shape != (h, w):
            raise UserError(
                f"{self.split}: GT {s.gt} is {gt_u8.shape[0]}x{gt_u8.shape[1]} but image {s.image} is "
                f"{h}x{w}"
            )
        if self.binarize_gt:
            gt = torch.from_numpy((gt_u8 > GT_THRESHOLD).astype(np.float32))
        else:
            gt = torch.from_numpy(gt_u8.astype(np.float32) / 255.0)
        image = torch.from_numpy(rgb).permute(2, 0, 1).float()
        out = {
            "image": _resize(image, self.size, "bilinear") / 255.0,
            "gt": _resize(gt[None], self.size, "nearest"),
            "depth": self._load_depth(s.depths[depth_name], (h, w), s.image),
            "orig_size": torch.tensor([h, w], dtype=torch.int64),
        }
        if self.target_depth is not None:
            out["depth_target"] = self._load_depth(s.depths[self.target_depth], (h, w), s.image)
        return out

    def __getitem__(self, index: int) -> dict:
        _single_threaded_cv2_in_workers()
        rng = sample_rng(self.seed, self.epoch, index)
        if self.train:
            depth_name = self.input_depths[int(rng.integers(len(self.input_depths)))]
        else:
            depth_name = self.eval_depth
        item = self.load(index, depth_name)
        image = item.pop("image")
        if self.augment:
            keys = ["gt", "depth"] + (["depth_target"] if "depth_target" in item else [])
            image, maps = augment_train(image, [item[k] for k in keys], rng, self.zoom_border)
            for k, m in zip(keys, maps):
                item[k] = m.clamp_(0.0, 1.0)
        s = self.samples[index]
        out = {"image": normalize_image(image).contiguous()}
        out.update(item)
        out["stem"] = s.stem
        out["index"] = index
        out["gt_path"] = str(s.gt)
        out["gt_alpha"] = s.gt_alpha
        return out

    def __repr__(self) -> str:
        mode = "train" if self.train else "eval"
        part = "" if self.part == "all" else f", part={self.part}"
        return (f"DISDataset({self.split!r}{part}, n={len(self)}, size={self.size}, {mode}, "
                f"layout={self.index.layout}, depths={self.index.depth_names})")


__all__ = ["GT_THRESHOLD", "DISDataset", "sample_rng"]
