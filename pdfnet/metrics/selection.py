"""Checkpoint selection: the release's own validation F, and which way each selection metric improves.

The official training loop keeps the epoch whose DIS-VD score is ≥ the best so far, scored by its own
validation function (not by the DIS evaluator): for every image, the **raw sigmoid map** at the network
resolution (1024², no quantisation, no min–max) is multiplied by 255 and split by the GT (``gt·255 > 128``);
``torch.histc`` with **255 bins** over [0, 255] counts each side; reversed cumulative sums give, per bin,

* precision = TP / (TP + FP + 1e-4), recall = TP / (|GT| + 1e-4).

Precision and recall are averaged over images, ``F = 1.3·P̄·R̄ / (0.3·P̄ + R̄ + 1e-8)``, and the score is the
maximum over the 255 bins. Its MAE is the mean over images of ``mean(|p − gt|)`` on the same raw maps.
:class:`ReleaseF` computes exactly that (same operations, same dtypes, same order of the image mean), so a
run selects the epoch the release would have selected.

:data:`SELECT_METRICS` names every ``train.select_metric`` and its direction; :func:`is_better` is the
release's comparison (``>=`` for higher-is-better, ``<=`` for MAE: ties move to the later epoch).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: ``train.select_metric`` → True when higher is better. ``release_F``: :class:`ReleaseF`; ``maxF`` /
#: ``maxF_meanPR``: the DIS metric's curve / mean-P-R Fmax (uint8 maps, 256 thresholds); ``wF``; ``MAE``.
SELECT_METRICS: dict[str, bool] = {"release_F": True, "maxF": True, "maxF_meanPR": True, "wF": True,
                                   "MAE": False}


def is_better(value: float, best: float | None, metric: str) -> bool:
    """The release's rule: a new best when ``value >= best`` (``<=`` for MAE), or when there is none yet.
    A NaN value is never better."""
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value >= best if SELECT_METRICS[metric] else value <= best


def selection_score(metrics: dict[str, float], metric: str) -> float | None:
    """The number checkpoint selection maximises with ``>=``: ``metrics[metric]``, negated for MAE (so
    ``>=`` on it is the release's ``<=`` on MAE); None when the metric is missing or not finite."""
    if metric not in SELECT_METRICS:
        raise ValueError(f"unknown selection metric {metric!r} (use {', '.join(SELECT_METRICS)})")
    v = metrics.get(metric)
    if v is None or not math.isfinite(v):
        return None
    return float(v) if SELECT_METRICS[metric] else -float(v)


@torch.no_grad()
def release_pr(prob: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin precision and recall of one image, as the release's validation computes them.

    Args:
        prob: ``[1, H, W]`` (or ``[H, W]``) sigmoid probabilities in [0, 1], fp32.
        gt: the same shape, GT in [0, 1] (foreground where ``gt·255 > 128``).

    Returns:
        ``(precision, recall)``, each ``[255]`` fp32, bin 0 = the highest threshold.
    """
    pd = (prob[0] if prob.ndim == 3 else prob) * 255
    g = (gt[0] if gt.ndim == 3 else gt) * 255
    fg = g > 128
    n_fg = torch.sum(fg.float() * 1)
    tp = torch.cumsum(torch.flipud(torch.histc(pd[fg], bins=255, min=0, max=255)), dim=0)
    fp = torch.cumsum(torch.flipud(torch.histc(pd[~fg], bins=255, min=0, max=255)), dim=0)
    return tp / (tp + fp + 1e-4), tp / (n_fg + 1e-4)


class ReleaseF:
    """Accumulates the release's validation F and MAE over images (mergeable across DDP ranks).

    ``update(prob, gt)`` takes ``[B, 1, H, W]`` probabilities and GTs (any device); a GT of another size
    is met by resizing the prediction bilinearly (``align_corners=False``), as the release does.
    """

    def __init__(self) -> None:
        self.precision: list[np.ndarray] = []
        self.recall: list[np.ndarray] = []
        self.mae: list[float] = []

    @torch.no_grad()
    def update(self, prob: torch.Tensor, gt: torch.Tensor) -> None:
        for i in range(prob.shape[0]):
            p, g = prob[i].float(), gt[i].to(prob.device).float()
            if p.shape[-2:] != g.shape[-2:]:
                p = F.interpolate(p[None], size=g.shape[-2:], mode="bilinear", align_corners=False)[0]
            pre, rec = release_pr(p, g)
            self.precision.append(pre.cpu().numpy())
            self.recall.append(rec.cpu().numpy())
            self.mae.append(float(torch.mean(torch.abs(p - g))))

    def state_dict(self) -> dict:
        return {"precision": [a.tolist() for a in self.precision],
                "recall": [a.tolist() for a in self.recall], "mae": list(self.mae)}

    def merge(self, state: dict) -> ReleaseF:
        """Append another accumulator's images (its :meth:`state_dict`); returns self."""
        self.precision += [np.asarray(a, dtype=np.float32) for a in state["precision"]]
        self.recall += [np.asarray(a, dtype=np.float32) for a in state["recall"]]
        self.mae += [float(v) for v in state["mae"]]
        return self

    def compute(self) -> dict[str, float]:
        """``{"release_F": max over bins of F(mean P, mean R), "release_MAE": mean MAE}`` (NaN if empty)."""
        if not self.mae:
            return {"release_F": float("nan"), "release_MAE": float("nan")}
        pre = np.mean(np.asarray(self.precision, dtype=np.float64), 0)
        rec = np.mean(np.asarray(self.recall, dtype=np.float64), 0)
        f = (1 + 0.3) * pre * rec / (0.3 * pre + rec + 1e-8)
        return {"release_F": float(np.amax(f)), "release_MAE": float(np.mean(np.asarray(self.mae)))}


__all__ = ["SELECT_METRICS", "ReleaseF", "is_better", "release_pr", "selection_score"]
