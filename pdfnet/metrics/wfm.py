"""Weighted F-measure (Margolin et al., CVPR'14; beta = 1) with PySOD 1.6.2 / scipy semantics, band-limited.

PySOD computes, on the full image, an exact EDT with nearest-foreground indices (scipy), the error map
``E = |p - G|``, ``Et`` = E with every background pixel replaced by the error of its nearest GT pixel, a
7x7 Gaussian (sigma 5, MATLAB ``fspecial``) of ``Et`` with zero padding, and the distance weights
``B = 2 - 0.5 ** (Dst / 5)`` on the background. This module computes the same numbers with less work:

* ``FPw`` only needs ``Dst`` at background pixels with ``p > 0``. The distances come from OpenCV's exact
  Euclidean transform (``DIST_MASK_PRECISE``, float32) on the smallest rectangle holding the GT and those
  pixels; the exact squared distance is recovered as ``rint(D**2)`` (exact below ~1000 px) and
  ``Dst = sqrt(d2)`` in float64 is bit-identical to scipy's. Beyond 1000 px ``B`` rounds to 2.0 either way.
* ``MIN_E_EA = min(EA, E)`` is summed over GT pixels only, and a GT pixel with ``p = 1`` has ``E = 0`` and
  contributes 0, so ``EA`` is only evaluated at "active" GT pixels (``p < 1``): by ``cv2.sepFilter2D`` in
  float64 on the GT bounding box grown by 3 (``K = k k^T``), or by 49 gathers when there are few of them.
* ``E`` on the GT is affine in the raw value, ``alpha * (c - v)``, so ``Et`` and ``EA`` are computed on the
  uint8 map ``c - v`` (cheaper than float64 maps) and scaled once; this moves wF by < 1e-14.
* ``Et`` is only read within Chebyshev distance 3 of active GT pixels, where background pixels have
  ``Dst**2 <= 18``. Their nearest GT pixel is found by scanning the few offsets with exactly that squared
  distance in scipy's tie order: among equidistant GT pixels the one with the **smallest column, then the
  smallest row** (what ``scipy.ndimage.distance_transform_edt(..., return_indices=True)`` returns). Other
  tie rules move wF by up to ~1e-2.

Only the summation order differs from PySOD, so wF agrees to ~1e-14. Empty GT gives wF = 0 (PySOD rule).
"""

from __future__ import annotations

import cv2
import numpy as np

from pdfnet.metrics.core import EPS

_LOG_HALF_5 = np.log(0.5) / 5


def _gauss_1d(size: int = 7, sigma: float = 5.0) -> np.ndarray:
    m = (size - 1) / 2
    x = np.arange(-m, m + 1)
    k = np.exp(-(x * x) / (2 * sigma * sigma))
    return k / k.sum()


_K1 = _gauss_1d()
_K2 = np.outer(_K1, _K1)
#: use the 49-gather correlation when 49 * active pixels < GATHER_FACTOR * crop pixels (else sepFilter2D)
GATHER_FACTOR = 1


def _offsets_by_d2(max_d2: int = 18) -> dict[int, np.ndarray]:
    """Offsets ``(dy, dx)`` with ``dy^2 + dx^2 == d2``, in scipy's tie order (dx ascending, then dy)."""
    out: dict[int, list[tuple[int, int]]] = {}
    r = int(np.floor(np.sqrt(max_d2)))
    for dx in range(-r, r + 1):
        for dy in range(-r, r + 1):
            d2 = dx * dx + dy * dy
            if 0 < d2 <= max_d2:
                out.setdefault(d2, []).append((dy, dx))
    return {d2: np.array(v, dtype=np.int64) for d2, v in sorted(out.items())}


_OFFSETS = _offsets_by_d2()
_N_RANK = max(len(v) for v in _OFFSETS.values())
# [19, ranks] offset tables (unused entries repeat the last offset of their d2; never reached)
_RANK_DY = np.zeros((19, _N_RANK), dtype=np.int64)
_RANK_DX = np.zeros((19, _N_RANK), dtype=np.int64)
for _d2, _offs in _OFFSETS.items():
    _full = np.concatenate([_offs, np.repeat(_offs[-1:], _N_RANK - len(_offs), axis=0)])
    _RANK_DY[_d2], _RANK_DX[_d2] = _full[:, 0], _full[:, 1]
_SQUARE7 = np.ones((7, 7), dtype=np.uint8)
_PAD = 5


def weighted_fmeasure(pred_u8: np.ndarray, gt_fg: np.ndarray, p_lut: np.ndarray) -> float:
    """Weighted F-measure of one image.

    Args:
        pred_u8: uint8 prediction ``[H, W]``.
        gt_fg: bool GT foreground ``[H, W]``.
        p_lut: float64 ``[256]`` normalised value of each raw value
            (:func:`pdfnet.metrics.core.normalisation_luts`).
    """
    if not gt_fg.any():
        return 0.0
    h, w = gt_fg.shape
    g8 = gt_fg.view(np.uint8)
    n_fg = int(np.count_nonzero(g8))

    # FPw = sum over the background of p * B  (E = p there, MIN_E_EA = E): only pixels with p > 0 count
    sel = cv2.LUT(pred_u8, (p_lut != 0).astype(np.uint8))
    cv2.subtract(sel, g8, dst=sel)  # 0/1 values, saturating: sel & ~G

    # crop: GT bounding box grown by 3 (everything EA at GT pixels can see)
    x, y, bw, bh = cv2.boundingRect(g8)
    y0, y1 = max(y - 3, 0), min(y + bh + 3, h)
    x0, x1 = max(x - 3, 0), min(x + bw + 3, w)

    # exact distances to the nearest GT pixel, on the smallest rectangle holding the GT crop and every
    # background pixel with p > 0 (all GT pixels lie inside it, so distances there are exact)
    sx, sy, sw, sh = cv2.boundingRect(sel)
    if sw:
        ry0, ry1, rx0, rx1 = min(y0, sy), max(y1, sy + sh), min(x0, sx), max(x1, sx + sw)
    else:
        ry0, ry1, rx0, rx1 = y0, y1, x0, x1
    # distances of background pixels to the nearest GT pixel (0 on the GT)
    dist32 = cv2.distanceTransform(1 - g8[ry0:ry1, rx0:rx1], cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    fpw = 0.0
    if sw:
        sub = sel[ry0:ry1, rx0:rx1]
        idx = np.flatnonzero(sub)
        d = dist32.ravel()[idx].astype(np.float64)
        if d.size and d.max() < 1000:
            np.multiply(d, d, out=d)
            np.rint(d, out=d)
            np.sqrt(d, out=d)
        else:
            small = d < 1000
            d[small] = np.sqrt(np.rint(d[small] * d[small]))
        np.multiply(d, _LOG_HALF_5, out=d)
        np.exp(d, out=d)
        b = np.subtract(2, d, out=d)
        pv = np.take(np.ascontiguousarray(pred_u8[ry0:ry1, rx0:rx1]).ravel(), idx)
        # sum of p * B grouped by raw value (avoids a BLAS dot, which is slow under thread contention)
        fpw = float(np.bincount(pv, weights=b, minlength=256) @ p_lut)

    gc = g8[y0:y1, x0:x1]
    # E on the GT is alpha * w with the uint8 map w = c - v (0 off the GT); GT pixels with w = 0 (p = 1)
    # contribute min(EA, 0) = 0: only "active" GT pixels (w > 0) need EA
    c, alpha = _error_scale(p_lut)
    wc = cv2.LUT(pred_u8[y0:y1, x0:x1], np.clip(c - np.arange(256), 0, 255).astype(np.uint8))
    cv2.multiply(wc, gc, dst=wc)
    active = cv2.threshold(wc, 0, 1, cv2.THRESH_BINARY)[1]  # 0/1
    n_active = cv2.countNonZero(active)
    if n_active == 0:
        s_fg = 0.0
    else:
        dc = dist32[y0 - ry0:y1 - ry0, x0 - rx0:x1 - rx0]
        s_fg = alpha * _active_sum(wc, gc, active, n_active, dc)
    tpw = n_fg - s_fg
    r = 1 - s_fg / n_fg
    prec = tpw / (tpw + fpw + EPS)
    return float((1 + 1) * r * prec / (r + 1 * prec + EPS))


def _error_scale(p_lut: np.ndarray) -> tuple[int, float]:
    """``(c, alpha)`` with ``1 - p_lut[v] == alpha * (c - v)`` up to float64 rounding (< 1e-14).

    The normalised map is affine in the raw value: ``c`` is the value mapped to 1 (the maximum of a min-max
    normalised map, 255 for a constant map, which is only divided by 255) and ``alpha = 1 / (c - v0)`` with
    ``v0`` the value mapped to 0.
    """
    ones, zeros = np.flatnonzero(p_lut == 1.0), np.flatnonzero(p_lut == 0.0)
    if ones.size == 0 or zeros.size == 0:
        raise ValueError("p_lut must come from pdfnet.metrics.core.normalisation_luts (it maps to 0 and 1)")
    c, v0 = int(ones[0]), int(zeros[0])
    return c, 1.0 / (c - v0)


def _active_sum(wc: np.ndarray, gc: np.ndarray, active: np.ndarray, n_active: int, dc: np.ndarray) -> float:
    """Sum over active GT pixels of ``min(EA, E) / alpha`` on the crop (``[h, w]`` arrays).

    ``wc`` is the uint8 error map ``w = c - v`` on the GT, 0 elsewhere (``E = Et = alpha * w``, see
    :func:`_error_scale`). The band that ``EA`` reads gets the error of its nearest GT pixel, in a frame
    padded by ``_PAD`` zeros (band candidates reach 4 px beyond the crop, the 7x7 window 3 px). ``EA`` of the
    integer map is the float64 correlation with the Gaussian; the caller scales the sum by ``alpha``.
    """
    wp = cv2.copyMakeBorder(wc, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_CONSTANT, value=0)
    wpf = wp.ravel()
    row = wp.shape[1]

    # band: background pixels within Chebyshev distance 3 of an active GT pixel (all have Dst^2 <= 18) get
    # the error of their nearest GT pixel, chosen in scipy's tie order
    # (active is inside the GT, so the dilated active set minus the GT is exactly that band)
    band = cv2.dilate(active, _SQUARE7, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    cv2.subtract(band, gc, dst=band)  # 0/1 values, saturating: near & ~G
    pts = cv2.findNonZero(band)
    if pts is not None:
        band_x = pts[:, 0, 0].astype(np.intp)
        band_y = pts[:, 0, 1].astype(np.intp)
        dd = dc[band_y, band_x].astype(np.float64)
        d2 = np.rint(dd * dd).astype(np.intp)
        gpf = cv2.copyMakeBorder(gc, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_CONSTANT, value=0).ravel()
        lin = (band_y + _PAD) * row + (band_x + _PAD)
        # candidate offsets of every band pixel, in tie order, as flat offsets: by_rank[rank, d2]; rank by
        # rank, the pixels whose candidate is a GT pixel are done, the others (cur, cur_d2 at pos) go on
        by_rank = np.ascontiguousarray((_RANK_DY * row + _RANK_DX).T)
        src = np.empty(lin.size, dtype=np.intp)
        cur, cur_d2, pos = lin, d2, None
        for offsets in by_rank:
            cand = cur + offsets[cur_d2]
            hit = gpf[cand].view(bool)
            src[hit if pos is None else pos[hit]] = cand[hit]
            miss = np.flatnonzero(~hit)
            if miss.size == 0:
                break
            pos = miss if pos is None else pos[miss]
            cur, cur_d2 = cur[miss], cur_d2[miss]
        wpf[lin] = wpf[src]  # the sources are GT pixels (never band pixels)

    if n_active * 49 < GATHER_FACTOR * active.size:
        # few active pixels: the 49-tap correlation by gathers at those pixels only
        pa = cv2.findNonZero(active)
        alin = (pa[:, 0, 1].astype(np.intp) + _PAD) * row + (pa[:, 0, 0].astype(np.intp) + _PAD)
        ea = np.zeros(alin.size, dtype=np.float64)
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                ea += _K2[dy + 3, dx + 3] * wpf[alin + (dy * row + dx)]
        return float(np.minimum(ea, wpf[alin]).sum())
    # the crop view of the padded map: OpenCV sees it as a whole image, zero beyond it (as the padding)
    wv = wp[_PAD:-_PAD, _PAD:-_PAD]
    ea = cv2.sepFilter2D(wv, cv2.CV_64F, _K1, _K1, borderType=cv2.BORDER_CONSTANT)
    np.minimum(ea, wv, out=ea)  # MIN_E_EA / alpha, read on active GT pixels only (B = 1 there)
    return float(np.sum(ea, where=active.view(bool)))
