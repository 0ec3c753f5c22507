"""Batched torch path: the histogram part of the DIS metrics (F/E curves, adaptive F/E, MAE, S) on any device.

For a batch ``[B, H, W]`` on (say) CUDA, one ``torch.bincount`` over ``value + 256·gt + 512·block + 2048·b``
gives every image's block histogram (:class:`~pdfnet.metrics.core.ImageHistogram`); the GT centroid for the
S-measure split comes from exact integer row/column sums on the device. Only ``B × 2048`` counts travel to the
CPU, where :func:`~pdfnet.metrics.core.histogram_stats` finishes in float64 with the same code as the numpy
path, so values are identical to it. wF and HCE (when requested) need the pixels and run on the CPU.
Float predictions are quantised on the device exactly like :func:`pdfnet.metrics.dis.quantize_prob`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pdfnet.metrics.core import ImageHistogram, histogram_stats, split_from_sums
from pdfnet.metrics.record import finish_record, metric_needs
from pdfnet.metrics.skeleton import SkeletonCache


def _pred_u8(p: torch.Tensor) -> torch.Tensor:
    if p.dtype == torch.uint8:
        return p
    if p.dtype == torch.bool:
        return p.to(torch.uint8) * 255
    if not p.dtype.is_floating_point:
        raise TypeError(f"prediction tensor must be uint8, bool or float, got {p.dtype}")
    p = p.to(torch.float32)
    if torch.isnan(p).any():
        raise ValueError("prediction contains NaN")
    return (p.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)


def _gt_fg(g: torch.Tensor) -> torch.Tensor:
    if g.dtype == torch.bool:
        return g
    if g.dtype == torch.uint8:
        return g > 128
    if g.dtype.is_floating_point:
        return torch.round(g.to(torch.float32).clamp(0.0, 1.0) * 255.0) > 128
    raise TypeError(f"GT tensor must be uint8, bool or float, got {g.dtype}")


def _as_bhw(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() == 2:
        x = x[None]
    if x.dim() != 3:
        raise ValueError(f"{what} must be [B, H, W] or [B, 1, H, W], got {tuple(x.shape)}")
    return x


def batch_histograms(pred_u8: torch.Tensor, gt_fg: torch.Tensor,
                     with_blocks: bool = True) -> list[ImageHistogram]:
    """Block histograms of a batch (uint8 ``[B, H, W]`` predictions, bool ``[B, H, W]`` GTs, same device)."""
    b, h, w = pred_u8.shape
    dev = pred_u8.device
    splits = [(h, w)] * b
    key = pred_u8.to(torch.int64) + 256 * gt_fg.to(torch.int64)
    if with_blocks:
        rows = gt_fg.sum(dim=2, dtype=torch.int64)  # [B, H]
        cols = gt_fg.sum(dim=1, dtype=torch.int64)  # [B, W]
        n = rows.sum(dim=1)
        rsum = (rows * torch.arange(h, device=dev)).sum(dim=1)
        csum = (cols * torch.arange(w, device=dev)).sum(dim=1)
        n_, r_, c_ = (t.cpu().tolist() for t in (n, rsum, csum))
        splits = [(h, w) if n_[i] == 0 else split_from_sums(r_[i], c_[i], n_[i]) for i in range(b)]
        cy = torch.tensor([s[0] for s in splits], device=dev)
        cx = torch.tensor([s[1] for s in splits], device=dev)
        ar_h = torch.arange(h, device=dev)[None, :, None]
        ar_w = torch.arange(w, device=dev)[None, None, :]
        key = key + 1024 * (ar_h >= cy[:, None, None]) + 512 * (ar_w >= cx[:, None, None])
    key = key + 2048 * torch.arange(b, device=dev)[:, None, None]
    hist = torch.bincount(key.reshape(-1), minlength=2048 * b).reshape(b, 4, 2, 256).cpu().numpy()
    return [ImageHistogram(hist=hist[i].astype(np.int64), height=h, width=w, cy=splits[i][0], cx=splits[i][1])
            for i in range(b)]


@torch.no_grad()
def batch_records(preds: torch.Tensor, gts: torch.Tensor, metrics: Sequence[str], *,
                  skeleton_cache: SkeletonCache | None = None, relax: int = 5, epsilon: float = 2.0,
                  ) -> list[dict]:
    """Per-image records of a same-size batch of torch tensors on any device.

    ``preds``/``gts`` are ``[B, H, W]`` or ``[B, 1, H, W]`` (the inputs of
    :meth:`pdfnet.metrics.dis.DISMetrics.update_batch`, which adds the records to its sums).
    """
    p = _pred_u8(_as_bhw(preds, "prediction"))
    g = _gt_fg(_as_bhw(gts, "GT").to(p.device))
    if p.shape != g.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and GT {tuple(g.shape)} differ in size")
    need = metric_needs(metrics)
    hists = batch_histograms(p, g, with_blocks=need["s"])
    pixels = need["wf"] or need["hce"]
    p_np = p.cpu().numpy() if pixels else None
    g_np = g.cpu().numpy() if pixels else None
    out = []
    for i, hst in enumerate(hists):
        def getter(i: int = i) -> np.ndarray:
            return p[i].cpu().numpy()

        st = histogram_stats(hst, want_curves=need["curves"], want_adaptive=need["adaptive"],
                             want_mae=need["mae"], want_s=need["s"], pixel_getter=getter)
        rec = finish_record(st, need, None if p_np is None else p_np[i], None if g_np is None else g_np[i],
                            skeleton_cache=skeleton_cache, relax=relax, epsilon=epsilon)
        out.append(rec)
    return out
