"""Histogram-exact F / E / MAE / S-measure for the DIS protocol (PySODMetrics 1.6.2 semantics).

Everything here is computed from one small integer histogram per image instead of from the pixels:
``hist[block, g, v]`` counts the pixels of raw prediction value ``v`` (0..255) with GT class ``g``
(0 = background, 1 = foreground, i.e. GT value > 128) in each of the four S-measure blocks
(top-left, top-right, bottom-left, bottom-right of the GT centroid split). The whole-image histogram is
the sum over blocks. Because a prediction has at most 256 distinct values, every per-pixel quantity of
the protocol is a function of ``v`` and can be evaluated on a 256-entry lookup table:

* normalisation ``p = P8 / 255`` then min-max (``(p - min) / (max - min)`` on the already divided
  float64 values; a constant map is *not* normalised and stays ``c / 255``);
* the 256-threshold bin ``q = uint8(p * 255)`` (truncation of the float64 product). The LUT is built with
  exactly the float64 operations PySOD applies per pixel, so ``q`` is bit-identical (exact rational
  arithmetic or float32 would move 1.4 % / 2 % of the bins);
* curve index ``i`` (0..255) means "positive iff ``q >= 255 - i``": index 0 is the strictest threshold and
  index 255 makes every pixel positive.

The F / precision / recall / E curves and adaptive F / E use the same float64 expressions as PySOD on the
same integer counts, so they agree bit for bit. MAE and the S-measure moments are sums over the histogram
instead of over pixels; they differ from PySOD only by float64 rounding (~1e-16).

Edge cases (all as PySOD 1.6.2, stated here because they are policy):

* **Empty GT**: precision/recall/F curves are 0 (``recall = TP / max(|G|, 1)``), E counts the negative
  pixels, S = 1 - mean(p), MAE = mean(p). These images stay in the dataset means (as in PySOD).
* **Full GT**: E counts the positive pixels, S = mean(p).
* **Constant prediction** ``c``: not normalised, ``p = c / 255``; the adaptive threshold ``min(2 mean, 1)``
  is applied to ``p``; an all-zero map has threshold 0, so every pixel is adaptive-positive.
* **S-measure blocks**: the centroid is the 0-based mean foreground (row, col) rounded half-to-even, +1.
  When the centroid lands on the last row/column one block is empty and PySOD's S is **NaN**; we return
  NaN per image as well (faithful to the reference) and the dataset S skips such images (see
  :mod:`pdfnet.metrics.dis`). A block whose prediction and GT are both constant scores 1 iff numpy's
  mean of the constant block equals the constant exactly; that mean is reproduced with numpy itself so
  the 1-vs-0 decision matches PySOD.
* **Adaptive threshold ties**: ``p >= 2·mean(p)`` is evaluated on the histogram; if a present prediction
  value lies within 1e-12 of the threshold, the mean is recomputed from the pixels exactly as numpy
  computes it (``pixel_getter``), so the decision matches PySOD bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

EPS: float = float(np.spacing(1))
BETA2: float = 0.3
N_THR: int = 256
_CALCHIST_MAX = 1 << 24  # float32 histogram counts are exact below this

# ---------------------------------------------------------------------------------------------------
# histograms


@dataclass
class ImageHistogram:
    """Per-image sufficient statistics for F / E / MAE / S.

    Attributes:
        hist: int64 ``[4, 2, 256]`` counts (block, GT class bg/fg, raw prediction value).
        height, width: image size.
        cy, cx: S-measure split (sizes of the top and left blocks); ``(height, width)`` when the GT is empty.
    """

    hist: np.ndarray
    height: int
    width: int
    cy: int
    cx: int

    @property
    def total(self) -> np.ndarray:
        """Whole-image histogram ``[2, 256]`` (bg, fg)."""
        return self.hist.sum(axis=0)


def centroid_split(g: np.ndarray) -> tuple[int, int]:
    """S-measure split ``(cy, cx)`` of a boolean GT ``[H, W]`` (PySOD: round-half-even 0-based mean, +1)."""
    h, w = g.shape
    rows = np.count_nonzero(g, axis=1)
    n = int(rows.sum())
    if n == 0:
        return h, w
    cols = np.count_nonzero(g, axis=0)
    return split_from_sums(int(np.dot(rows, np.arange(h, dtype=np.int64))),
                            int(np.dot(cols, np.arange(w, dtype=np.int64))), n)


def split_from_sums(row_sum: int, col_sum: int, n: int) -> tuple[int, int]:
    """The S-measure split point ``(cy, cx)`` of a GT from its row/column index sums over ``n`` pixels."""
    # exact integer sums; float(sum) / n is what numpy's mean of the int64 argwhere gives (sums < 2**53)
    cy = np.round(np.float64(row_sum) / n)
    cx = np.round(np.float64(col_sum) / n)
    return int(cy) + 1, int(cx) + 1


def image_histogram(pred_u8: np.ndarray, gt_fg: np.ndarray, with_blocks: bool = True) -> ImageHistogram:
    """Build the block histogram of one image.

    Args:
        pred_u8: uint8 prediction ``[H, W]``.
        gt_fg: bool GT foreground ``[H, W]`` (GT value > 128).
        with_blocks: False skips the centroid split (everything lands in block 0); enough for F/E/MAE.
    """
    h, w = pred_u8.shape
    cy, cx = centroid_split(gt_fg) if with_blocks else (h, w)
    hist = np.zeros((4, 2, 256), dtype=np.int64)
    if h * w < _CALCHIST_MAX:
        # OpenCV's masked histograms (float32 counts: exact below 2**24 pixels per block)
        # per block: the unmasked histogram and the GT-masked one; background = all - foreground
        fg = np.ascontiguousarray(gt_fg.view(np.uint8))
        blocks = ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)),
                  (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w)))
        for i, (ys, xs) in enumerate(blocks):
            if (ys.stop - ys.start) * (xs.stop - xs.start) == 0:
                continue
            src = pred_u8[ys, xs]
            hist[i, 1] = cv2.calcHist([src], [0], fg[ys, xs], [256], [0, 256])[:, 0].astype(np.int64)
            hist[i, 0] = cv2.calcHist([src], [0], None, [256], [0, 256])[:, 0].astype(np.int64)
            hist[i, 0] -= hist[i, 1]
    else:
        key = pred_u8.astype(np.uint16)
        key |= gt_fg.view(np.uint8).astype(np.uint16) << 8
        if cy < h:
            key[cy:] += 1024
        if cx < w:
            key[:, cx:] += 512
        hist[:] = np.bincount(key.ravel(), minlength=2048).reshape(4, 2, 256)
    return ImageHistogram(hist=hist, height=h, width=w, cy=cy, cx=cx)


# ---------------------------------------------------------------------------------------------------
# lookup tables


def value_range(total: np.ndarray) -> tuple[int, int]:
    """(min, max) raw prediction value present in a ``[2, 256]`` histogram."""
    present = np.flatnonzero(total.sum(axis=0))
    return int(present[0]), int(present[-1])


def normalisation_luts(vmin: int, vmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``(p[256] float64, q[256] uint8)``: normalised value and curve bin of every raw value.

    Uses PySOD's per-pixel float64 operations, so entries for values in ``[vmin, vmax]`` are bit-identical
    to what PySOD computes on pixels. Entries outside the range are clipped (they have zero counts).
    """
    a = np.arange(256, dtype=np.uint8) / 255
    if vmax != vmin:
        p = (a - a[vmin]) / (a[vmax] - a[vmin])
    else:
        p = a
    q = (np.clip(p, 0.0, 1.0) * 255).astype(np.uint8)
    return p, q


# ---------------------------------------------------------------------------------------------------
# F / precision / recall / E curves


def pr_f_curves(fg_q: np.ndarray, bg_q: np.ndarray, n_fg: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F) curves ``[256]`` from quantised-bin histograms (PySOD ``Fmeasure.cal_pr``)."""
    tps = np.cumsum(np.flip(fg_q), axis=0)
    ps = tps + np.cumsum(np.flip(bg_q), axis=0)
    ps[ps == 0] = 1
    t = max(n_fg, 1)
    precision = tps / ps
    recall = tps / t
    numerator = (1 + BETA2) * precision * recall
    denominator = np.where(numerator == 0, 1, BETA2 * precision + recall)
    return precision, recall, numerator / denominator


def _em_parts(fg_fg, fg_bg, pred_fg, pred_bg, n_fg: int, n: int):
    bg_fg = n_fg - fg_fg
    bg_bg = pred_bg - bg_fg
    parts = [fg_fg, fg_bg, bg_fg, bg_bg]
    mean_pred = pred_fg / n
    mean_gt = n_fg / n
    dp_fg, dp_bg = 1 - mean_pred, 0 - mean_pred
    dg_fg, dg_bg = 1 - mean_gt, 0 - mean_gt
    return parts, [(dp_fg, dg_fg), (dp_fg, dg_bg), (dp_bg, dg_fg), (dp_bg, dg_bg)]


def e_curve(fg_q: np.ndarray, bg_q: np.ndarray, n_fg: int, n: int) -> np.ndarray:
    """E-measure curve ``[256]`` (PySOD ``Emeasure.cal_em_with_cumsumhistogram``)."""
    fg_fg = np.cumsum(np.flip(fg_q), axis=0)
    fg_bg = np.cumsum(np.flip(bg_q), axis=0)
    pred_fg = fg_fg + fg_bg
    pred_bg = n - pred_fg
    if n_fg == 0:
        s = pred_bg
    elif n_fg == n:
        s = pred_fg
    else:
        parts, combos = _em_parts(fg_fg, fg_bg, pred_fg, pred_bg, n_fg, n)
        res = np.empty((4, 256), dtype=np.float64)
        for i, (part, (c0, c1)) in enumerate(zip(parts, combos)):
            align = 2 * (c0 * c1) / (c0**2 + c1**2 + EPS)
            res[i] = (align + 1) ** 2 / 4 * part
        s = res.sum(axis=0)
    return s / (n - 1 + EPS)


def e_at(fg_fg: int, fg_bg: int, n_fg: int, n: int) -> float:
    """E-measure of one binary map with the given counts (PySOD ``Emeasure.cal_em_with_threshold``)."""
    pred_fg = fg_fg + fg_bg
    pred_bg = n - pred_fg
    if n_fg == 0:
        s = pred_bg
    elif n_fg == n:
        s = pred_fg
    else:
        parts, combos = _em_parts(fg_fg, fg_bg, pred_fg, pred_bg, n_fg, n)
        vals = []
        for part, (c0, c1) in zip(parts, combos):
            align = 2 * (c0 * c1) / (c0**2 + c1**2 + EPS)
            vals.append((align + 1) ** 2 / 4 * part)
        s = sum(vals)
    return float(s / (n - 1 + EPS))


def f_at(tp: int, npos: int, n_fg: int) -> float:
    """Adaptive F of one binary map (PySOD ``Fmeasure.cal_adaptive_fm``)."""
    if tp == 0:
        return 0.0
    pre = tp / npos
    rec = tp / n_fg
    return float((1 + BETA2) * pre * rec / (BETA2 * pre + rec))


# ---------------------------------------------------------------------------------------------------
# S-measure


def _s_object(mean: float, std: float) -> float:
    return 2 * mean / (mean**2 + 1 + std + EPS)


def _moments(counts: np.ndarray, vals: np.ndarray) -> tuple[float, float]:
    """(mean, std ddof=1) of a value distribution given by counts (std 0 for a single element)."""
    n = int(counts.sum())
    mean = float(np.dot(counts, vals)) / n
    if n > 1:
        d = vals - mean
        std = float(np.sqrt(np.dot(counts, d * d) / (n - 1)))
    else:
        std = 0.0
    return mean, std


def _np_constant_block_mean(c: float, bh: int, bw: int, x0: int, width: int) -> float:
    """numpy's mean of a constant block viewed inside a ``[bh, width]`` row-major array (PySOD's layout)."""
    a = np.full((bh, width), c, dtype=np.float64)
    return float(a[:, x0:x0 + bw].mean())


def _ssim_block(counts: np.ndarray, p: np.ndarray, bh: int, bw: int, x0: int, width: int) -> float:
    """PySOD ``Smeasure.ssim`` of one block from its ``[2, 256]`` histogram."""
    n = bh * bw
    if n == 0:
        return float("nan")
    cnt_v = counts.sum(axis=0)
    n_fg = int(counts[1].sum())
    y = n_fg / n
    present = np.flatnonzero(cnt_v)
    if present.size == 1 and (n_fg == 0 or n_fg == n):
        # constant prediction and constant GT: alpha == 0, beta == (x^2 + y^2) * sigma_x where sigma_x is 0
        # iff numpy's block mean equals the constant exactly -> reproduce numpy's summation
        c = float(p[present[0]])
        x = c if c in (0.0, 1.0) else _np_constant_block_mean(c, bh, bw, x0, width)
        if (x == 0.0 and y == 0.0) or x == c:
            return 1.0
        return 0.0
    x = float(np.dot(cnt_v, p)) / n
    dx = p - x
    sx = float(np.dot(cnt_v, dx * dx)) / (n - 1 + EPS)
    sy = (n_fg * (1 - y) ** 2 + (n - n_fg) * y**2) / (n - 1 + EPS)
    if n_fg == 0 or n_fg == n:
        sxy = 0.0
    else:
        sxy = float(np.dot(counts[1], dx)) * (1 - y) + float(np.dot(counts[0], dx)) * (0 - y)
        sxy = sxy / (n - 1 + EPS)
    alpha = 4 * x * y * sxy
    beta = (x**2 + y**2) * (sx + sy)
    if alpha != 0:
        return alpha / (beta + EPS)
    if beta == 0:
        return 1.0
    return 0.0


def s_measure(h: ImageHistogram, p: np.ndarray, alpha: float = 0.5) -> float:
    """S-measure (alpha 0.5) from the block histogram and the normalisation LUT ``p``."""
    total = h.total
    n = h.height * h.width
    n_fg = int(total[1].sum())
    cnt = total.sum(axis=0)
    if n_fg == 0:
        return 1 - float(np.dot(cnt, p)) / n
    if n_fg == n:
        return float(np.dot(cnt, p)) / n
    y = n_fg / n
    m_fg, s_fg = _moments(total[1], p)
    q = 1 - p
    m_bg, s_bg = _moments(total[0], q)
    obj = _s_object(m_fg, s_fg) * y + _s_object(m_bg, s_bg) * (1 - y)
    hh, ww, cy, cx = h.height, h.width, h.cy, h.cx
    w_lt = cx * cy / n
    w_rt = cy * (ww - cx) / n
    w_lb = (hh - cy) * cx / n
    w_rb = 1 - w_lt - w_rt - w_lb
    dims = [(cy, cx, 0), (cy, ww - cx, cx), (hh - cy, cx, 0), (hh - cy, ww - cx, cx)]
    weights = [w_lt, w_rt, w_lb, w_rb]
    reg = 0.0
    for b in range(4):
        bh, bw, x0 = dims[b]
        reg = reg + _ssim_block(h.hist[b], p, bh, bw, x0, ww) * weights[b]
    sm = obj * alpha + reg * (1 - alpha)
    return float(np.maximum(0, sm))


# ---------------------------------------------------------------------------------------------------
# everything from one histogram


PixelGetter = Callable[[], np.ndarray]


def adaptive_threshold(
    total: np.ndarray, p: np.ndarray, n: int, pixel_getter: PixelGetter | None = None
) -> float:
    """``min(2 * mean(p), 1)`` with numpy's own mean when a present value is within 1e-12 of the threshold."""
    cnt = total.sum(axis=0)
    mean = float(np.dot(cnt, p)) / n
    thr = min(2 * mean, 1)
    present = p[cnt > 0]
    if pixel_getter is not None and np.any(np.abs(present - thr) <= 1e-12):
        pix = pixel_getter()
        thr = min(2 * p[pix].mean(), 1)
    return float(thr)


def histogram_stats(
    h: ImageHistogram,
    want_curves: bool = True,
    want_adaptive: bool = True,
    want_mae: bool = True,
    want_s: bool = True,
    pixel_getter: PixelGetter | None = None,
) -> dict:
    """Per-image F/P/R/E curves, adaptive F/E, MAE and S from an :class:`ImageHistogram`.

    Returns:
        dict with (as requested) ``fm``, ``precision``, ``recall``, ``em`` (float64 ``[256]``, index i means
        ``q >= 255 - i``), ``adp_fm``, ``adp_em``, ``mae``, ``sm`` and ``p_lut`` (float64 ``[256]``).
    """
    total = h.total
    n = h.height * h.width
    fg_raw, bg_raw = total[1], total[0]
    n_fg = int(fg_raw.sum())
    vmin, vmax = value_range(total)
    p, q = normalisation_luts(vmin, vmax)
    out: dict = {"p_lut": p}
    if want_curves:
        fg_q = np.bincount(q, weights=fg_raw, minlength=256).astype(np.int64)
        bg_q = np.bincount(q, weights=bg_raw, minlength=256).astype(np.int64)
        out["precision"], out["recall"], out["fm"] = pr_f_curves(fg_q, bg_q, n_fg)
        out["em"] = e_curve(fg_q, bg_q, n_fg, n)
    if want_adaptive:
        thr = adaptive_threshold(total, p, n, pixel_getter)
        sel = p >= thr
        tp = int(fg_raw[sel].sum())
        fp = int(bg_raw[sel].sum())
        out["adp_fm"] = f_at(tp, tp + fp, n_fg)
        out["adp_em"] = e_at(tp, fp, n_fg, n)
    if want_mae:
        out["mae"] = (float(np.dot(fg_raw, 1 - p)) + float(np.dot(bg_raw, p))) / n
    if want_s:
        out["sm"] = s_measure(h, p)
    return out
