"""Benchmark/test-only reference: PySODMetrics 1.6.2 + a port of the official IS-Net HCE.

This is the *baseline* that ``pdfnet bench metrics`` times against :mod:`pdfnet.metrics` and that tests
compare values with. It is deliberately the protocol as its authors ship it: PySODMetrics' five classes
(each calls its own ``prepare_data``) and the official HCE operation for operation (scikit-image's
``skeletonize``, integer masks, the per-point Python loop over contour points, ``cv2.approxPolyDP``).
Needs the ``dev`` extras (``pysodmetrics``, ``scikit-image``); the import is lazy so the package itself
never depends on them. ``cv2.approxPolyDP`` is only faithful with OpenCV <= 4.12 (see
:mod:`pdfnet.metrics.rdp`); :func:`official_hce` warns otherwise.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)


def _opencv_pre_413() -> bool:
    major, minor = (int(v) for v in cv2.__version__.split(".")[:2])
    return (major, minor) < (4, 13)


def _segments_of(contours, mask: np.ndarray, cond: np.ndarray):
    """Official ``filter_bdy_cond``, operation for operation: kept boundary segments, independent count.

    Kept as the official code does it (the per-point ``np.sum`` on the condition, the float ``ind_map``, the
    flag array sized by ``np.unique`` of the labels), so the baseline costs what the official script costs.
    """
    from skimage.measure import label  # scikit-image: a dev extra (reference metrics only)

    cond = cv2.dilate(cond.astype(np.uint8), _CROSS)
    labels = label(mask)
    indep = np.ones(np.unique(labels).shape[0])
    indep[0] = 0
    h, w = cond.shape[0:2]
    ind_map = np.zeros((h, w))
    segments = []
    for contour in contours:
        runs, run = [], []
        for j in range(contour.shape[0]):
            r, c = contour[j, 0, 1], contour[j, 0, 0]
            if np.sum(cond[r, c]) == 0 or ind_map[r, c] != 0:
                if run:
                    runs.append(run)
                    run = []
                continue
            run.append([c, r])
            ind_map[r, c] = ind_map[r, c] + 1
            indep[labels[r, c]] = 0
        if run:
            runs.append(run)
        if len(runs) > 1:
            fx, fy = runs[0][0]
            lx, ly = runs[-1][-1]
            if ((abs(fx - lx) == 1 and fy == ly) or (fx == lx and abs(fy - ly) == 1)
                    or (abs(fx - lx) == 1 and abs(fy - ly) == 1)):
                runs[-1].extend(runs[0][::-1])
                del runs[0]
        segments.extend(np.array(r)[:, np.newaxis, :] for r in runs)
    return segments, int(np.sum(indep))


def official_hce(gt_u8: np.ndarray, pred_u8: np.ndarray, skeleton: np.ndarray | None = None,
                 relax: int = 5, epsilon: float = 2.0) -> tuple[int, int, int, int]:
    """Official IS-Net ``relax_HCE`` → ``(fp_points, fp_indep, fn_points, fn_indep)``.

    The same array operations, in the same order and dtypes, as ``IS-Net/hce_metric_main.py`` (uint8 0/1
    maps, ``1 - np.logical_or(...)`` integer masks, per-segment ``cv2.approxPolyDP``); only the image reading
    is left to the caller. The skeleton is scikit-image's, computed here unless given (``gt_ske_root``).
    """
    from skimage.morphology import skeletonize  # scikit-image: a dev extra (reference metrics only)

    if not _opencv_pre_413():
        warnings.warn("official_hce: OpenCV >= 4.13 changed approxPolyDP; values differ from the protocol",
                      stacklevel=2)
    ske = skeletonize(gt_u8 > 128) if skeleton is None else skeleton
    gt = (gt_u8 > 128).astype(np.uint8)
    rs = (pred_u8 > 128).astype(np.uint8)
    union = np.logical_or(gt, rs)
    tp = np.logical_and(gt, rs)
    fp = rs - tp
    fn = gt - tp
    union_erode = cv2.erode(union.copy().astype(np.uint8), _CROSS, iterations=relax)
    fp_ = np.logical_and(fp, union_erode)
    for _ in range(relax):
        fp_ = cv2.dilate(fp_.astype(np.uint8), _CROSS)
        fp_ = np.logical_and(fp_, 1 - np.logical_or(tp, fn))
    fp_ = np.logical_and(fp, fp_)
    fn_ = np.logical_and(fn, union_erode)
    for _ in range(relax):
        fn_ = cv2.dilate(fn_.astype(np.uint8), _CROSS)
        fn_ = np.logical_and(fn_, 1 - np.logical_or(tp, fp))
    fn_ = np.logical_and(fn, fn_)
    fn_ = np.logical_or(fn_, np.logical_xor(ske, np.logical_and(tp, ske)))
    out = []
    for mask, cond in ((fp_, np.logical_or(tp, fn_)), (fn_, 1 - np.logical_or(np.logical_or(tp, fp_), fn_))):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)
        segs, indep = _segments_of(contours, mask, cond)
        points = sum(len(cv2.approxPolyDP(s, epsilon, False)) for s in segs)
        out += [int(points), indep]
    return tuple(out)  # type: ignore[return-value]


class ReferenceEvaluator:
    """PySODMetrics 1.6.2 (F, E, MAE, S, wF) + official HCE, fed uint8 arrays like the DIS tools."""

    def __init__(self) -> None:
        import py_sod_metrics as psm  # pysodmetrics: a dev extra (reference metrics only)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.fm = psm.Fmeasure()
        self.em = psm.Emeasure()
        self.mae = psm.MAE()
        self.sm = psm.Smeasure()
        self.wfm = psm.WeightedFmeasure()
        self.hces: list[int] = []

    def update(self, pred_u8: np.ndarray, gt_u8: np.ndarray, skeleton: np.ndarray | None = None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.fm.step(pred=pred_u8, gt=gt_u8)
            self.em.step(pred=pred_u8, gt=gt_u8)
            self.mae.step(pred=pred_u8, gt=gt_u8)
            self.sm.step(pred=pred_u8, gt=gt_u8)
            self.wfm.step(pred=pred_u8, gt=gt_u8)
        self.hces.append(sum(official_hce(gt_u8, pred_u8, skeleton)))

    def per_image(self, i: int) -> dict:
        """Per-image values of image ``i`` in :class:`pdfnet.metrics.DISMetrics` key names."""
        fm = np.asarray(self.fm.changeable_fms[i])
        em = np.asarray(self.em.changeable_ems[i])
        return {
            "fm": fm, "precision": np.asarray(self.fm.precisions[i]),
            "recall": np.asarray(self.fm.recalls[i]),
            "em": em, "adpF": float(self.fm.adaptive_fms[i]), "adpE": float(self.em.adaptive_ems[i]),
            "MAE": float(self.mae.maes[i]), "S": float(self.sm.sms[i]), "wF": float(self.wfm.weighted_fms[i]),
            "HCE": int(self.hces[i]),
        }

    def compute(self) -> dict:
        """Dataset aggregates in :data:`pdfnet.metrics.AGGREGATE_KEYS` names."""
        fm = self.fm.get_results()
        em = self.em.get_results()["em"]
        p, r = fm["pr"]["p"], fm["pr"]["r"]
        f_meanpr = 1.3 * p * r / (0.3 * p + r + 1e-16)
        return {
            "maxF": float(fm["fm"]["curve"].max()), "meanF": float(fm["fm"]["curve"].mean()),
            "adpF": float(fm["fm"]["adp"]), "maxE": float(em["curve"].max()),
            "meanE": float(em["curve"].mean()),
            "adpE": float(em["adp"]), "MAE": float(self.mae.get_results()["mae"]),
            "S": float(self.sm.get_results()["sm"]), "wF": float(self.wfm.get_results()["wfm"]),
            "HCE": float(np.mean(self.hces)), "maxF_meanPR": float(f_meanpr.max()),
        }
