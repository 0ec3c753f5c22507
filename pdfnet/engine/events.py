"""One metrics sink, several writers: ``metrics.jsonl`` + TensorBoard (+ the tqdm bar in the loop).

Only rank 0 builds writers; other ranks get an :class:`EventSink` with no writers, so call sites need no
``if rank == 0``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pdfnet.errors import UserError
from pdfnet.utils.atomic import file_mode
from pdfnet.utils.normalize import denormalize_image, minmax_normalize


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        v = v.detach().float().item() if v.numel() == 1 else v.detach().cpu().tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN/inf
    return v


class JsonlWriter:
    """Appends one JSON object per event to ``path`` (line-buffered, flushed each write).

    A symbolic link at ``path`` is refused, never followed (a planted link must not make a run append
    to some other file); a new file gets the umask's permissions.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_symlink():
            raise UserError(f"{self.path} is a symbolic link; refusing to write metrics through it "
                            "(remove the link)")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path, flags, file_mode())
        self._f = open(fd, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, step: int, scalars: Mapping[str, Any], kind: str) -> None:
        rec = {"kind": kind, "step": int(step), "time": round(time.time(), 3)}
        rec.update({k: _plain(v) for k, v in scalars.items()})
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class TensorboardWriter:
    """Scalars and image grids into ``log_dir`` (one event file); with ``purge_step``, TensorBoard hides
    the events of earlier event files at steps ``>= purge_step`` (a resumed run's repeated steps)."""

    def __init__(self, log_dir: str | os.PathLike, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter  # tensorboard: only for runs that log events

        self._w = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def write(self, step: int, scalars: Mapping[str, Any], kind: str) -> None:
        for k, v in scalars.items():
            v = _plain(v)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self._w.add_scalar(k, v, step)

    def image(self, step: int, tag: str, img: torch.Tensor) -> None:
        """``img``: ``[3, H, W]`` or ``[1, H, W]`` float in [0, 1]."""
        self._w.add_image(tag, img.detach().float().clamp(0, 1).cpu(), step)

    def flush(self) -> None:
        self._w.flush()

    def close(self) -> None:
        self._w.close()


class EventSink:
    """Fan-out of ``put_scalars`` / ``put_image`` to the configured writers."""

    def __init__(self, run_dir: str | os.PathLike | None, enabled: bool = True, tensorboard: bool = True,
                 purge_step: int | None = None):
        self.writers: list[Any] = []
        if enabled and run_dir is not None:
            self.writers.append(JsonlWriter(Path(run_dir) / "metrics.jsonl"))
            if tensorboard:
                self.writers.append(TensorboardWriter(Path(run_dir) / "tb", purge_step=purge_step))

    def put_scalars(self, step: int, scalars: Mapping[str, Any], kind: str = "train") -> None:
        for w in self.writers:
            w.write(step, scalars, kind)

    def put_image(self, step: int, tag: str, img: torch.Tensor) -> None:
        for w in self.writers:
            if hasattr(w, "image"):
                w.image(step, tag, img)

    def flush(self) -> None:
        for w in self.writers:
            if hasattr(w, "flush"):
                w.flush()

    def close(self) -> None:
        for w in self.writers:
            w.close()
        self.writers = []


def image_grid(image: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor, depth: torch.Tensor | None,
               max_items: int = 4, size: int = 256) -> torch.Tensor:
    """Rows of ``[image | prediction | GT | depth]`` for TensorBoard.

    Args:
        image: ``[B, 3, H, W]`` ImageNet-normalised RGB.
        pred: ``[B, 1, h, w]`` probabilities in [0, 1].
        gt: ``[B, 1, H, W]`` in [0, 1].
        depth: ``[B, 1, H, W]`` or None.

    Returns:
        ``[3, rows*size, cols*size]`` float in [0, 1].
    """
    n = min(max_items, image.shape[0])

    def rs(x: torch.Tensor) -> torch.Tensor:
        x = x[:n].detach().float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    cols = [denormalize_image(rs(image)), rs(pred), rs(gt)]
    if depth is not None:
        cols.append(minmax_normalize(rs(depth), "per_sample"))
    rows = torch.cat(cols, dim=3)  # [n, 3, size, cols*size]
    return torch.cat(list(rows.clamp(0, 1).cpu()), dim=1)
