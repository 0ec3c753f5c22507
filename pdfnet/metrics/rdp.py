"""OpenCV <= 4.12 ``approxPolyDP`` (Ramer-Douglas-Peucker) semantics, counting output points only.

OpenCV 4.13 (PR #28119) switched ``approxPolyDP`` to point-to-*segment* distances, which moves the DIS
HCE metric by 0.5-2 %. HCE must not depend on the installed OpenCV, so the pre-4.13 algorithm is
re-implemented here (from its documented behaviour):

1. Open curve whose first and last points differ: start with the slice (first, last). For a slice,
   the distance of every interior point to the **infinite line** through the chord is
   ``|(y - y0) * dx - (x - x0) * dy|``; the split point is the *first* point of strictly maximal distance.
   The chord is kept iff ``maxdist**2 <= eps**2 * (dx**2 + dy**2)``; kept slices emit their start point,
   and the last point of the curve is emitted at the end. Slices are processed depth first, left first,
   so the output is in curve order. (An open curve whose ends coincide is treated as closed: farthest
   point from the start, two slices with wrap-around, last point not emitted.)
2. Clean-up pass over the emitted points: a middle point is dropped when
   ``dist**2 <= 0.5 * eps**2 * (dx**2 + dy**2)`` with ``dx != 0``, ``dy != 0`` and a non-negative
   successive inner product, exactly in OpenCV's sequential order (which skips the point after a drop).

:func:`approx_poly_count_many` runs step 1 for thousands of curves at once (vectorised rounds over all
pending slices) and step 2 in a small Python loop over the emitted points. Integer inputs make every
quantity an exactly representable float64, so the counts equal OpenCV <= 4.12 exactly.
"""

from __future__ import annotations

import numpy as np


def _cleanup_count(px: np.ndarray, py: np.ndarray, eps2: float, closed0: bool = False) -> int:
    """OpenCV's final clean-up pass on emitted points ``(px, py)``; returns the final point count."""
    count = len(px)
    new_count = count
    dx_ = [int(v) for v in px]
    dy_ = [int(v) for v in py]
    pos = count - 1 if closed0 else 0

    def read(pos: int) -> tuple[tuple[int, int], int]:
        pt = (dx_[pos], dy_[pos])
        pos += 1
        if pos >= count:
            pos = 0
        return pt, pos

    start, pos = read(pos)
    wpos = pos
    pt, pos = read(pos)
    i = 0 if closed0 else 1
    limit = count - (0 if closed0 else 1)
    while i < limit and new_count > 2:
        end, pos = read(pos)
        dx = end[0] - start[0]
        dy = end[1] - start[1]
        dist = abs((pt[0] - start[0]) * dy - (pt[1] - start[1]) * dx)
        sip = (pt[0] - start[0]) * (end[0] - pt[0]) + (pt[1] - start[1]) * (end[1] - pt[1])
        if dist * dist <= 0.5 * eps2 * (dx * dx + dy * dy) and dx != 0 and dy != 0 and sip >= 0:
            new_count -= 1
            dx_[wpos], dy_[wpos] = end
            start = end
            wpos += 1
            if wpos >= count:
                wpos = 0
            pt, pos = read(pos)
            i += 2
            continue
        dx_[wpos], dy_[wpos] = pt
        start = pt
        wpos += 1
        if wpos >= count:
            wpos = 0
        pt = end
        i += 1
    return new_count


def approx_poly_count(points: np.ndarray, epsilon: float = 2.0) -> int:
    """Number of points ``cv2.approxPolyDP(points, epsilon, closed=False)`` returns with OpenCV <= 4.12.

    Scalar reference implementation (also handles coinciding ends). ``points``: int ``[N, 2]`` (x, y).
    """
    pts = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    count = len(pts)
    if count == 0:
        return 0
    eps2 = float(epsilon) * float(epsilon)
    x, y = pts[:, 0], pts[:, 1]
    out: list[int] = []
    stack: list[tuple[int, int]] = []
    is_closed = False
    if x[0] != x[-1] or y[0] != y[-1]:
        stack.append((0, count - 1))
    else:
        is_closed = True
        # closed: farthest point from the start (init_iters = 1), squared distance
        d = (x - x[0]) ** 2 + (y - y[0]) ** 2
        j = int(np.argmax(d[1:])) + 1 if count > 1 else 0
        if count > 1 and d[j] > eps2:
            stack.append((j, 0))
            stack.append((0, j))
        else:
            out.append(0)
    while stack:
        s, e = stack.pop()
        n_in = (e - s - 1) % count
        if n_in > 0:
            idx = (s + 1 + np.arange(n_in)) % count
            dx = float(x[e] - x[s])
            dy = float(y[e] - y[s])
            dist = np.abs((y[idx] - y[s]) * dx - (x[idx] - x[s]) * dy)
            k = int(np.argmax(dist))
            md = float(dist[k])
            if md * md <= eps2 * (dx * dx + dy * dy):
                out.append(s)
            else:
                m = int(idx[k])
                stack.append((m, e))
                stack.append((s, m))
        else:
            out.append(s)
    if not is_closed:
        out.append(count - 1)
    o = np.array(out, dtype=np.int64)
    return _cleanup_count(x[o], y[o], eps2)


def approx_poly_count_many(x: np.ndarray, y: np.ndarray, bounds: np.ndarray, epsilon: float = 2.0) -> int:
    """Total ``approxPolyDP(curve, epsilon, False)`` point count over many curves (OpenCV <= 4.12).

    Args:
        x, y: int64 coordinates of all curves, concatenated ``[N]``.
        bounds: int64 ``[M + 1]`` curve offsets (curve ``k`` is ``bounds[k]:bounds[k + 1]``), each non-empty.
        epsilon: RDP tolerance in pixels.
    """
    eps2 = float(epsilon) * float(epsilon)
    starts = bounds[:-1]
    ends = bounds[1:] - 1
    lens = ends - starts + 1
    total = 0
    # curves whose ends coincide (only possible for length 1 here, or unusual inputs): scalar path
    same = (x[starts] == x[ends]) & (y[starts] == y[ends])
    single = same & (lens == 1)
    total += int(single.sum())
    odd = np.flatnonzero(same & (lens > 1))
    for k in odd:
        total += approx_poly_count(np.stack([x[starts[k]:ends[k] + 1], y[starts[k]:ends[k] + 1]], 1), epsilon)
    keep = ~same
    cs, ce = starts[keep], ends[keep]
    if cs.size == 0:
        return total
    emitted = [ce]  # the last point of every open curve
    s, e = cs, ce
    while s.size:
        n_in = e - s - 1
        leaf = n_in <= 0
        emitted.append(s[leaf])
        s, e, n_in = s[~leaf], e[~leaf], n_in[~leaf]
        if s.size == 0:
            break
        off = np.zeros(s.size + 1, dtype=np.int64)
        np.cumsum(n_in, out=off[1:])
        rep = np.repeat(np.arange(s.size), n_in)
        idx = s[rep] + 1 + (np.arange(off[-1]) - off[rep])
        dx = (x[e] - x[s]).astype(np.float64)
        dy = (y[e] - y[s]).astype(np.float64)
        dist = np.abs((y[idx] - y[s][rep]) * dx[rep] - (x[idx] - x[s][rep]) * dy[rep])
        mx = np.maximum.reduceat(dist, off[:-1])
        big = np.iinfo(np.int64).max
        first = np.minimum.reduceat(np.where(dist == mx[rep], np.arange(off[-1]), big), off[:-1])
        ok = mx * mx <= eps2 * (dx * dx + dy * dy)
        emitted.append(s[ok])
        split = ~ok
        m = idx[first[split]]
        s = np.concatenate([s[split], m])
        e = np.concatenate([m, e[split]])
    pts = np.sort(np.concatenate(emitted))
    # group emitted points per curve (curve = position of bounds)
    cid = np.searchsorted(bounds, pts, side="right") - 1
    total += int(pts.size)
    # the clean-up pass only drops points when some *original* consecutive emitted triple passes its test
    # (until the first drop every triple it tests is an original one), so only curves with such a triple
    # need the sequential pass; the vectorised test below is a superset of the exact one
    if pts.size >= 3:
        interior = np.flatnonzero((cid[:-2] == cid[1:-1]) & (cid[1:-1] == cid[2:])) + 1
        if interior.size:
            a, b, c = pts[interior - 1], pts[interior], pts[interior + 1]
            dx = x[c] - x[a]
            dy = y[c] - y[a]
            bx, by = x[b] - x[a], y[b] - y[a]
            dist = np.abs(bx * dy - by * dx).astype(np.float64)
            sip = bx * (x[c] - x[b]) + by * (y[c] - y[b])
            maybe = ((dist * dist <= 0.5 * eps2 * (dx * dx + dy * dy).astype(np.float64) * (1 + 1e-9) + 1.0)
                     & (dx != 0) & (dy != 0) & (sip >= 0))
            for k in np.unique(cid[interior[maybe]]):
                lo, hi = np.searchsorted(cid, [k, k + 1])
                g = pts[lo:hi]
                total += _cleanup_count(x[g], y[g], eps2) - len(g)
    return total
