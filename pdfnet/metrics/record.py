"""One image's DIS record: the metric names, what each needs, and the per-image values.

:func:`evaluate_pair` scores one uint8 pair; :func:`finish_record` turns the histogram statistics of
:func:`pdfnet.metrics.core.histogram_stats` (computed with numpy here or batched with torch in
:mod:`pdfnet.metrics.torch_stats`) into the record, adding wF and HCE on the pixels. The accumulator over
images is :class:`pdfnet.metrics.dis.DISMetrics`; definitions and edge cases are documented there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from pdfnet.metrics.core import histogram_stats, image_histogram
from pdfnet.metrics.hce import hce_parts
from pdfnet.metrics.skeleton import SkeletonCache, skeletonize
from pdfnet.metrics.wfm import weighted_fmeasure

#: every dataset aggregate, in table order
AGGREGATE_KEYS: tuple[str, ...] = (
    "maxF", "meanF", "adpF", "maxE", "meanE", "adpE", "MAE", "S", "wF", "HCE", "maxF_meanPR",
)
#: per-image scalar keys written to ``per_image``
PER_IMAGE_KEYS: tuple[str, ...] = (
    "maxF", "meanF", "adpF", "maxE", "meanE", "adpE", "MAE", "S", "wF", "HCE",
    "HCE_fp_points", "HCE_fp_indep", "HCE_fn_points", "HCE_fn_indep",
)
CURVE_KEYS: tuple[str, ...] = ("fm", "precision", "recall", "em")


def metric_needs(metrics: Iterable[str]) -> dict[str, bool]:
    """Which parts of the computation ``metrics`` (names of :data:`AGGREGATE_KEYS`) need."""
    m = set(metrics)
    return {
        "curves": bool(m & {"maxF", "meanF", "maxE", "meanE", "maxF_meanPR"}),
        "adaptive": bool(m & {"adpF", "adpE"}),
        "mae": "MAE" in m,
        "s": "S" in m,
        "wf": "wF" in m,
        "hce": "HCE" in m,
    }


def evaluate_pair(
    pred_u8: np.ndarray,
    gt_u8: np.ndarray,
    metrics: Sequence[str] = AGGREGATE_KEYS,
    skeleton: np.ndarray | None = None,
    skeleton_cache: SkeletonCache | None = None,
    relax: int = 5,
    epsilon: float = 2.0,
) -> dict:
    """All requested per-image metrics of one uint8 pair (same size, no resizing here).

    ``gt_u8`` may also be the boolean foreground mask (``gt > 128``) itself.

    Returns:
        dict with curves ``fm``, ``precision``, ``recall``, ``em`` (float64 ``[256]``) when needed, and the
        scalars of :data:`PER_IMAGE_KEYS` that were requested (``HCE`` parts included with ``HCE``).
    """
    if pred_u8.shape != gt_u8.shape:
        raise ValueError(f"prediction {pred_u8.shape} and GT {gt_u8.shape} differ in size")
    need = metric_needs(metrics)
    g = gt_u8 if gt_u8.dtype == bool else gt_u8 > 128
    h = image_histogram(pred_u8, g, with_blocks=need["s"])
    st = histogram_stats(h, want_curves=need["curves"], want_adaptive=need["adaptive"], want_mae=need["mae"],
                         want_s=need["s"], pixel_getter=lambda: pred_u8)
    return finish_record(st, need, pred_u8, g, skeleton, skeleton_cache, relax, epsilon)


def finish_record(
    st: dict,
    need: dict[str, bool],
    pred_u8: np.ndarray | None,
    g: np.ndarray | None,
    skeleton: np.ndarray | None = None,
    skeleton_cache: SkeletonCache | None = None,
    relax: int = 5,
    epsilon: float = 2.0,
) -> dict:
    """Per-image record from :func:`~pdfnet.metrics.core.histogram_stats` output (+ wF / HCE on pixels)."""
    rec: dict[str, Any] = {}
    if need["curves"]:
        for k in CURVE_KEYS:
            rec[k] = st[k]
        rec["maxF"], rec["meanF"] = float(st["fm"].max()), float(st["fm"].mean())
        rec["maxE"], rec["meanE"] = float(st["em"].max()), float(st["em"].mean())
    if need["adaptive"]:
        rec["adpF"], rec["adpE"] = st["adp_fm"], st["adp_em"]
    if need["mae"]:
        rec["MAE"] = st["mae"]
    if need["s"]:
        rec["S"] = st["sm"]
    if need["wf"]:
        rec["wF"] = weighted_fmeasure(pred_u8, g, st["p_lut"])
    if need["hce"]:
        if skeleton is None:
            if skeleton_cache is not None:
                skeleton = skeleton_cache.get(g)
            elif bool((g & (pred_u8 <= 128)).any()):
                skeleton = skeletonize(g)
            else:
                skeleton = np.zeros_like(g)  # no FN pixel: the skeleton cannot matter
        parts = hce_parts(g, pred_u8, skeleton=skeleton, relax=relax, epsilon=epsilon)
        rec["HCE"] = parts.total
        rec["HCE_fp_points"], rec["HCE_fp_indep"] = parts.fp_points, parts.fp_indep
        rec["HCE_fn_points"], rec["HCE_fn_indep"] = parts.fn_points, parts.fn_indep
    return rec
