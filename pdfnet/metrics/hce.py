"""Human Correction Efforts (HCE): the official IS-Net protocol (``relax_HCE``), fast, OpenCV-version-proof.

Protocol (relax 5, RDP epsilon 2.0), exactly as the official ``IS-Net/hce_metric_main.py``:

* GT foreground ``G = gt > 128``; prediction foreground ``P = pred > 128`` on the **raw uint8** prediction
  (no min-max normalisation; 128 is background). PySODMetrics' own HCE class normalises the prediction and
  uses ``> 0.5`` instead, which differs on range-compressed, constant and 128-valued maps: do not mix them.
* Skeleton ``ske = skeletonize(G)`` (scikit-image Zhang-Suen; :mod:`pdfnet.metrics.skeleton` gives the
  identical skeleton faster and can cache it by GT content).
* ``TP = G & P``, ``FP = P & ~G``, ``FN = G & ~P``; ``Ue = erode(G | P, cross3x3, 5 iterations)`` with
  OpenCV's default border (outside counts as foreground). ``FP_ = FP & Ue``, then 5 x (``dilate``,
  ``& ~G``), ``& FP``;
  ``FN_`` likewise with ``& ~P``; then ``FN_ |= ske & ~TP`` (missed skeleton pixels always need a fix).
* For each of FP_ (condition ``TP | FN_``) and FN_ (condition ``~(TP | FP_ | FN_)``), the condition is dilated
  with the cross; contours come from ``cv2.findContours(RETR_TREE, CHAIN_APPROX_NONE)``; walking all contour
  points in OpenCV order, a point is *kept* iff its (dilated) condition is set and its pixel was not kept
  before; runs of consecutive kept points form boundary segments; per contour, when there are >= 2 segments
  and the first point of the first segment is an 8-neighbour of the last point of the last segment, the
  reversed first segment is appended to the last one. Each segment costs ``len(approxPolyDP(seg, 2.0,
  open))`` control points, computed with OpenCV <= 4.12 semantics regardless of the installed OpenCV
  (:mod:`pdfnet.metrics.rdp`). Each 8-connected component with no kept boundary point costs 1 click.
* Quirk kept for parity: the official code sizes its per-component flag array by ``np.unique(labels)``, so
  a mask that covers the **whole image** (no background label) gets 0 independent regions instead of 1.
  This only happens for an all-foreground prediction on an empty GT or an all-background prediction on a
  full GT, where the official HCE is 0.

The official code walks every contour point in a Python loop; here the "first visit" rule is a
``np.unique`` over all points, runs and merges are vectorised, and RDP runs over all segments at once.
Per-image HCE is an integer: ``fp_points + fp_indep + fn_points + fn_indep``.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from pdfnet.metrics.rdp import approx_poly_count_many
from pdfnet.metrics.skeleton import skeletonize

CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)  # skimage.morphology.disk(1)


class HCEParts(NamedTuple):
    """The four integer parts of HCE; ``total`` is their sum."""

    fp_points: int
    fp_indep: int
    fn_points: int
    fn_indep: int

    @property
    def total(self) -> int:
        return self.fp_points + self.fp_indep + self.fn_points + self.fn_indep


def _u8(m: np.ndarray) -> np.ndarray:
    return m.view(np.uint8)


def _component_of_contours(parent: np.ndarray) -> np.ndarray:
    """Index of the outer border of the component each contour belongs to (RETR_TREE ``parent`` column).

    Depth 0, 2, 4... contours are outer borders (their own component); odd depths are holes (their parent's).
    """
    n = parent.size
    depth = np.zeros(n, dtype=np.int64)
    cur = parent.astype(np.int64)
    while True:
        alive = cur >= 0
        if not alive.any():
            break
        depth += alive
        cur = np.where(alive, parent[np.maximum(cur, 0)], -1)
    idx = np.arange(n)
    return np.where(depth % 2 == 0, idx, parent)


def boundary_effort(mask: np.ndarray, cond: np.ndarray, epsilon: float = 2.0,
                    full_frame: bool = True) -> tuple[int, int]:
    """(control points, independent regions) to fix ``mask`` given the ``cond`` map (bool ``[H, W]`` each).

    Official ``filter_bdy_cond`` + ``approximate_RDP``. ``full_frame``: the arrays are the whole image (not a
    crop of it); only then can a mask "cover the whole image" (the official flag-array quirk).
    """
    if not mask.any():
        return 0, 0
    h, w = mask.shape
    m8 = np.ascontiguousarray(_u8(mask))
    cond_d = cv2.dilate(np.ascontiguousarray(_u8(cond)), CROSS)
    contours, hierarchy = cv2.findContours(m8, cv2.RETR_TREE, cv2.CHAIN_APPROX_NONE)
    # 8-connected components without a labelling pass: every component has exactly one outer border, and a
    # hole border's parent in the RETR_TREE hierarchy is the outer border of the component around the hole
    comp = _component_of_contours(hierarchy[0, :, 3])
    n_comp = int(np.count_nonzero(comp == np.arange(comp.size)))
    whole = full_frame and n_comp == 1 and bool(mask.all())
    lens = np.fromiter((len(c) for c in contours), dtype=np.int64, count=len(contours))
    pts = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    x, y = pts[:, 0], pts[:, 1]
    lin = y * w + x
    ok = np.flatnonzero(cond_d.ravel()[lin] != 0)
    if ok.size == 0:
        return 0, (0 if whole else n_comp)
    _, first = np.unique(lin[ok], return_index=True)
    kept_idx = np.sort(ok[first])
    kept = np.zeros(len(pts), dtype=bool)
    kept[kept_idx] = True
    cid = np.repeat(np.arange(len(lens)), lens)
    n_touched = np.unique(comp[cid[kept_idx]]).size
    indep = 0 if whole else n_comp - n_touched

    # runs of consecutive kept points inside each contour
    cstart = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=cstart[1:])
    prev_kept = np.zeros(len(pts), dtype=bool)
    prev_kept[1:] = kept[:-1]
    prev_kept[cstart[:-1]] = False
    run_start = kept & ~prev_kept
    run_id = np.cumsum(run_start) - 1  # valid on kept points
    krun = run_id[kept_idx]
    next_kept = np.zeros(len(pts), dtype=bool)
    next_kept[:-1] = kept[1:]
    next_kept[cstart[1:] - 1] = False
    run_first = np.flatnonzero(run_start)  # first point (global index) of every run
    run_last = np.flatnonzero(kept & ~next_kept)  # last point of every run (same run order)
    n_runs = run_first.size
    # per contour with >= 2 runs: its first and last run (runs are in contour order)
    _, r0, rcnt = np.unique(cid[run_first], return_index=True, return_counts=True)
    multi = rcnt >= 2
    fr, lr = r0[multi], (r0 + rcnt - 1)[multi]
    fp_, lp_ = run_first[fr], run_last[lr]
    merge = np.maximum(np.abs(x[fp_] - x[lp_]), np.abs(y[fp_] - y[lp_])) == 1
    fr, lr = fr[merge], lr[merge]

    # order key: (segment, position); merged first runs go reversed after their contour's last run
    seg = krun.copy()
    pos = kept_idx.copy()
    if fr.size:
        target = np.arange(n_runs)
        target[fr] = lr
        is_moved = np.isin(krun, fr)
        base = np.zeros(n_runs, dtype=np.int64)
        base[fr] = run_last[lr] + 1 + run_last[fr]
        seg = target[krun]
        pos = np.where(is_moved, base[krun] - kept_idx, kept_idx)
    order = np.lexsort((pos, seg))
    sx, sy, sseg = x[kept_idx][order], y[kept_idx][order], seg[order]
    cut = np.flatnonzero(np.diff(sseg)) + 1
    bounds = np.concatenate([[0], cut, [len(sseg)]]).astype(np.int64)
    points = approx_poly_count_many(sx, sy, bounds, epsilon)
    return int(points), int(indep)


def _relax_grow(seed: np.ndarray, allow: np.ndarray, relax: int) -> np.ndarray:
    """``relax`` x (dilate with the cross, then ``& allow``) of the bool ``seed`` (``[H, W]`` each).

    Works on the seed's bounding box grown by ``relax`` (clipped to the array): ``relax`` cross steps cannot
    leave it, and OpenCV's dilation border adds nothing, so the result equals the full-array loop.
    """
    x, y, w, h = cv2.boundingRect(_u8(seed))
    if w == 0:
        return seed
    hh, ww = seed.shape
    y0, y1, x0, x1 = max(y - relax, 0), min(y + h + relax, hh), max(x - relax, 0), min(x + w + relax, ww)
    sub = np.ascontiguousarray(seed[y0:y1, x0:x1])
    al = allow[y0:y1, x0:x1]
    for _ in range(relax):
        sub = cv2.dilate(_u8(sub), CROSS).view(bool)
        sub &= al
    if (y0, y1, x0, x1) == (0, hh, 0, ww):
        return sub
    out = np.zeros_like(seed)
    out[y0:y1, x0:x1] = sub
    return out


def hce_parts(
    gt_u8: np.ndarray,
    pred_u8: np.ndarray,
    skeleton: np.ndarray | None = None,
    relax: int = 5,
    epsilon: float = 2.0,
) -> HCEParts:
    """HCE of one image (official protocol), split into its four integer parts.

    Args:
        gt_u8: uint8 GT ``[H, W]`` (foreground > 128), or a bool foreground mask.
        pred_u8: uint8 prediction ``[H, W]`` at GT size (foreground > 128, raw values).
        skeleton: bool skeleton of the GT foreground (cached); computed when None.
        relax: erosion/dilation steps.
        epsilon: RDP tolerance.
    """
    g = gt_u8 if gt_u8.dtype == bool else gt_u8 > 128
    p = pred_u8 > 128
    if g.shape != p.shape:
        raise ValueError(f"HCE: GT {g.shape} and prediction {p.shape} differ in size")
    u = g | p
    x, y, w, h = cv2.boundingRect(_u8(u))
    if w == 0:
        return HCEParts(0, 0, 0, 0)
    # everything happens within relax + 1 pixels of G | P: crop with a background margin (exact, see below)
    m = relax + 2
    hh, ww = g.shape
    y0, y1, x0, x1 = max(y - m, 0), min(y + h + m, hh), max(x - m, 0), min(x + w + m, ww)
    full = (y0, y1, x0, x1) == (0, hh, 0, ww)
    if not full:
        g, p, u = g[y0:y1, x0:x1], p[y0:y1, x0:x1], u[y0:y1, x0:x1]
    if skeleton is None:
        ske = skeletonize(g)
    else:
        ske = skeleton if full else skeleton[y0:y1, x0:x1]
    tp = g & p
    fp = p & ~g
    fn = g & ~p
    # erode: outside the image counts as foreground (OpenCV default border); outside a crop the margin is
    # background, and 5 erosion steps cannot reach from the crop edge to G | P, so the crop is exact
    ue = cv2.erode(np.ascontiguousarray(_u8(u)), CROSS, iterations=relax).view(bool)
    not_g = ~g
    not_p = ~p
    fp_ = _relax_grow(fp & ue, not_g, relax)
    fp_ &= fp
    fn_ = _relax_grow(fn & ue, not_p, relax)
    fn_ &= fn
    fn_ |= ske & ~tp
    fp_pts, fp_ind = boundary_effort(fp_, tp | fn_, epsilon, full)
    fn_pts, fn_ind = boundary_effort(fn_, ~(tp | fp_ | fn_), epsilon, full)
    return HCEParts(fp_pts, fp_ind, fn_pts, fn_ind)
