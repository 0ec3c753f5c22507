"""Synthetic DIS-like data: the embedded default dataset, written in the official DIS5K layout.

``generate_dataset(out, ...)`` writes::

    <out>/DIS-TR|DIS-VD|DIS-TE1..4/
        im/<stem>.jpg                 RGB scene (JPEG, quality 95)
        gt/<stem>.png                 binary mask (0/255)
        depth_{small,base,large,large_1024}/<stem>.png   8-bit depth, near = bright (DAv2 polarity)
    <out>/synth.json                  generator settings and counts

Each scene is one DIS-style object over a cluttered background:

* objects (one kind per image, named in the stem like DIS5K's ``#`` fields): thin **wires**, **meshes**
  with holes (lattices clipped to a frame), branching **trees**, **solid** parts with holes, spoked
  **wheels** with frames, and **mixed** solids with thin legs/antennas;
* backgrounds: several planar surfaces, each with its own texture (gradients, low-frequency noise,
  stripes, checks, grain), plus clutter — rectangles, ellipses, polygons and thin straight and curved
  lines — and a random defocus blur; the object stays sharp and anti-aliased;
* colours of object and background come from the same distribution; the only constraint is a minimum
  colour distance between the object and its immediate surroundings, so the object is visible but
  cannot be found by colour keying;
* depth follows the integrity prior: the object is one smooth, slightly tilted surface in front
  (values ≥ 0.6 before per-image min–max), the background is chaotic — planar patches at many depths,
  clutter at its own depths, grain — and stays behind the object, except that in a share of scenes
  (``near_floor``, default 0.12) a floor ramps up to the object's depth at the bottom of the image, so
  thresholding the depth alone is not enough. Measured on 64 DIS-VD images at 128 px, the raw
  ``large`` depth used as the prediction gives maxF ≈ 0.86 with the default (0.91 with 0, 0.80 with
  0.25), while a small U-Net on image + depth reaches ≈ 0.92 in 8 CPU minutes: learnable, but only by
  using the image too. Generate at the size you train at: thin parts are 1–2 px wide, and resizing
  256-px data to 128 caps maxF at ≈ 0.88 even for a perfect model;
* the four depth "models" are the same true depth with model-like degradation: ``large_1024`` is
  nearly exact, ``large``/``base``/``small`` are increasingly blurred and noisy (thin structures fade,
  as they do in real pseudo-depth), each min–max normalised to 0–255 like Depth Anything V2 output.

Every image is a pure function of ``(seed, split, index)`` (its own ``numpy`` generator), so output
files are byte-identical across runs and independent of the number of worker processes.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pdfnet.errors import UserError
from pdfnet.utils.atomic import atomic_write_bytes
from pdfnet.utils.parallel import process_pool

MANIFEST = "synth.json"
"""Written first (``"complete": false``) and last: the settings, hence every file a run writes."""
SPLITS: tuple[str, ...] = ("DIS-TR", "DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")
DEPTH_MODELS: tuple[str, ...] = ("small", "base", "large", "large_1024")
OBJECT_KINDS: tuple[str, ...] = ("Wire", "Mesh", "Tree", "Solid", "Wheel", "Mixed")
#: Depth degradation per model at 256 px: (blur sigma in px, noise std, low-frequency wobble).
_DEPTH_DEGRADE: dict[str, tuple[float, float, float]] = {
    "large_1024": (0.4, 0.0, 0.0),
    "large": (1.0, 0.006, 0.02),
    "base": (1.6, 0.010, 0.04),
    "small": (2.5, 0.015, 0.06),
}
_SS = 2  # supersampling factor of the object mask (anti-aliased edges, binary GT)
_JPEG_QUALITY = 95
_BG_DEPTH_MAX = 0.5
_OBJ_DEPTH_MIN = 0.6
_MIN_OBJ_FRACTION = 0.004
NEAR_FLOOR_P = 0.12
"""Default share of scenes with a floor that comes as near as the object (depth alone is not enough)."""
_MIN_COLOR_DIST = 70.0


@dataclass(frozen=True)
class SynthSpec:
    """Settings of one generated dataset (written to ``synth.json``)."""

    seed: int = 0
    size: int = 256
    aspect_jitter: float = 0.0
    """Width = size · exp(U(−a, a)) (rounded to even); 0 → square images."""
    near_floor: float = NEAR_FLOOR_P
    counts: tuple[tuple[str, int], ...] = (("DIS-TR", 256), ("DIS-VD", 64), ("DIS-TE1", 32),
                                           ("DIS-TE2", 32), ("DIS-TE3", 32), ("DIS-TE4", 32))


# ----------------------------------------------------------------------------------------------------
# Random building blocks


def _color(rng: np.random.Generator) -> np.ndarray:
    """One colour (float32 RGB, 0–255) from the shared palette distribution (random HSV)."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(0, 256), rng.integers(30, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _lowfreq(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise ``[h, w]`` in about [0, 1] from a ``cells``-sized random grid (bicubic)."""
    g = rng.random((cells, cells)).astype(np.float32)
    return np.clip(cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(x, y)``, each float32 ``[h, w]`` (cached, read-only)."""
    x = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))
    y = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))
    return x, y


def _texture(rng: np.random.Generator, h: int, w: int, smooth: bool = False) -> np.ndarray:
    """A textured surface ``[h, w, 3]`` float32 (0–255): two palette colours mixed by a random pattern."""
    c1, c2 = _color(rng), _color(rng)
    x, y = _grid(h, w)
    kinds = ("flat", "gradient", "noise") if smooth else ("flat", "gradient", "noise", "stripes",
                                                             "checks", "grain")
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "flat":
        t = np.full((h, w), rng.uniform(0.0, 0.3), np.float32)
    elif kind == "gradient":
        a = rng.uniform(0, 2 * math.pi)
        t = (x * math.cos(a) + y * math.sin(a)) / max(h, w)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    elif kind == "noise":
        t = _lowfreq(rng, h, w, int(rng.integers(3, 10)))
    elif kind == "stripes":
        a, period = rng.uniform(0, math.pi), rng.uniform(6, 40) * max(h, w) / 256
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (x * math.cos(a) + y * math.sin(a)) / period)
    elif kind == "checks":
        p = rng.uniform(8, 40) * max(h, w) / 256
        t = ((np.floor(x / p) + np.floor(y / p)) % 2).astype(np.float32) * rng.uniform(0.3, 1.0)
    else:  # grain
        t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), rng.uniform(0.6, 2.0))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    t = t.astype(np.float32, copy=False)[..., None]
    return c1 + (c2 - c1) * t


def _walk(rng: np.random.Generator, start: np.ndarray, n: int, step: float, turn: float) -> np.ndarray:
    """A smooth random-walk polyline ``[n, 2]`` (x, y) starting at ``start``."""
    ang = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, turn, n))
    pts = np.stack([np.cos(ang), np.sin(ang)], 1) * step
    return start + np.cumsum(pts, axis=0)


def _poly_pts(pts: np.ndarray) -> np.ndarray:
    """Float points → int32 with 4 fractional bits (use with ``shift=4``)."""
    return np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)


def _blob(rng: np.random.Generator, c: np.ndarray, r: float, n: int = 48, rough: float = 0.25) -> np.ndarray:
    """A random star-shaped closed polygon ``[n, 2]`` of mean radius ``r`` around ``c``."""
    th = np.linspace(0, 2 * math.pi, n, endpoint=False)
    rad = np.ones(n)
    for k in range(1, 5):
        rad += rough / k * rng.uniform(-1, 1) * np.sin(k * th + rng.uniform(0, 2 * math.pi))
    rad = np.clip(rad, 0.3, None) * r
    return c + np.stack([np.cos(th) * rad, np.sin(th) * rad], 1)


def _thick(rng: np.random.Generator, lo: float, hi: float) -> int:
    """A line thickness in supersampled pixels (``lo``–``hi`` output pixels; ``hi`` < ``lo`` → ``lo``)."""
    return max(1, int(round(rng.uniform(lo, max(lo, hi)) * _SS)))


# ----------------------------------------------------------------------------------------------------
# Objects (drawn as a binary uint8 mask at _SS× resolution; coordinates in supersampled pixels)


def _draw_wire(m: np.ndarray, rng: np.random.Generator, c: np.ndarray, r: float, px: float) -> None:
    for _ in range(int(rng.integers(1, 5))):
        start = c + rng.uniform(-0.5, 0.5, 2) * r
        n = int(rng.integers(30, 90))
        pts = _walk(rng, start, n, step=r * rng.uniform(0.03, 0.06), turn=rng.uniform(0.05, 0.3))
        cv2.polylines(m, [_poly_pts(pts)], False, 1, _thick(rng, 1.0, 2.5 * px), cv2.LINE_8, shift=4)
        if rng.random() < 0.5:  # a plug / clip at one end
            e = pts[-1] if rng.random() < 0.5 else pts[0]
            cv2.fillPoly(m, [_poly_pts(_blob(rng, e, r * rng.uniform(0.05, 0.12), 16))], 1, cv2.LINE_8, 4)


def _lattice(h: int, w: int, rng: np.random.Generator, px: float) -> np.ndarray:
    """Two (sometimes three) families of parallel lines, slightly warped: bool ``[h, w]``."""
    x, y = _grid(h, w)
    amp, per = rng.uniform(0, 6) * _SS * px, rng.uniform(60, 200) * _SS * px
    xw = x + amp * np.sin(y / per * 2 * math.pi)
    yw = y + amp * np.sin(x / per * 2 * math.pi)
    out = np.zeros((h, w), bool)
    a0 = rng.uniform(0, math.pi)
    fams = 3 if rng.random() < 0.2 else 2
    for k in range(fams):
        a = a0 + k * math.pi / fams + rng.uniform(-0.2, 0.2)
        s = rng.uniform(6, 16) * _SS * px
        t = rng.uniform(1.0, 2.2) * _SS * px
        d = np.mod(xw * math.cos(a) + yw * math.sin(a) + rng.uniform(0, s), s)
        out |= d < t
    return out


def _draw_mesh(m: np.ndarray, rng: np.random.Generator, c: np.ndarray, r: float, px: float) -> None:
    h, w = m.shape
    frame = np.zeros_like(m)
    shape = _blob(rng, c, r, rough=rng.uniform(0.0, 0.3))
    if rng.random() < 0.4:  # rectangular frame
        a, (sx, sy) = rng.uniform(0, math.pi), rng.uniform(0.6, 1.0, 2) * r
        box = cv2.boxPoints(((float(c[0]), float(c[1])), (2 * sx, 2 * sy), math.degrees(a)))
        shape = np.asarray(box, np.float64)
    cv2.fillPoly(frame, [_poly_pts(shape)], 1, cv2.LINE_8, 4)
    m |= (frame.astype(bool) & _lattice(h, w, rng, px)).astype(np.uint8)
    cv2.polylines(m, [_poly_pts(shape)], True, 1, _thick(rng, 1.5, 4.0 * px), cv2.LINE_8, shift=4)
    if rng.random() < 0.4:  # handle
        hc = c + rng.uniform(-0.3, 0.3, 2) * r
        cv2.ellipse(m, (int(hc[0]), int(hc[1])), (int(r * 0.6), int(r * 0.9)), rng.uniform(0, 360),
                    180, 360, 1, _thick(rng, 1.5, 3.5 * px))


def _draw_tree(m: np.ndarray, rng: np.random.Generator, c: np.ndarray, r: float, px: float) -> None:
    base = c + np.array([rng.uniform(-0.2, 0.2) * r, r * rng.uniform(0.7, 1.0)])
    ang0 = -math.pi / 2 + rng.uniform(-0.3, 0.3)
    stack = [(base, ang0, r * rng.uniform(0.45, 0.65), rng.uniform(3.0, 7.0) * px, 0)]
    levels = int(rng.integers(4, 7))
    while stack:
        p, a, length, t, lvl = stack.pop()
        q = p + length * np.array([math.cos(a), math.sin(a)])
        cv2.line(m, tuple(np.round(p * 16).astype(int)), tuple(np.round(q * 16).astype(int)), 1,
                 max(1, int(round(t * _SS))), cv2.LINE_8, shift=4)
        if lvl + 1 >= levels:
            continue
        for _ in range(3 if rng.random() < 0.2 else 2):
            da = rng.uniform(0.25, 0.8) * (1 if rng.random() < 0.5 else -1)
            stack.append((q, a + da, length * rng.uniform(0.55, 0.8), max(0.9 * px, t * 0.7), lvl + 1))


def _draw_solid(m: np.ndarray, rng: np.random.Generator, c: np.ndarray, r: float, px: float) -> None:
    for _ in range(int(rng.integers(1, 3))):
        cc = c + rng.uniform(-0.3, 0.3, 2) * r
        if rng.random() < 0.5:
            cv2.fillPoly(m, [_poly_pts(_blob(rng, cc, r * rng.uniform(0.5, 0.9)))], 1, cv2.LINE_8, 4)
        else:
            ax = (int(r * rng.uniform(0.4, 0.9)), int(r * rng.uniform(0.3, 0.8)))
            cv2.ellipse(m, (int(cc[0]), int(cc[1])), ax, rng.uniform(0, 180), 0, 360, 1, -1)
    dist = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    for _ in range(int(rng.integers(1, 7))):  # holes well inside the part
        hr = r * rng.uniform(0.05, 0.2)
        ys, xs = np.nonzero(dist > hr * 1.6)
        if len(xs) == 0:
            break
        k = int(rng.integers(len(xs)))
        hc = np.array([xs[k], ys[k]], np.float64)
        cv2.fillPoly(m, [_poly_pts(_blob(rng, hc, hr, 24))], 0, cv2.LINE_8, 4)
        dist = cv2.distanceTransform(m, cv2.DIST_L2, 3)


def _draw_wheel(m: np.ndarray, rng: np.random.Generator, c: np.ndarray, r: float, px: float) -> None:
    n = int(rng.integers(1, 3))
    rad = r * (rng.uniform(0.6, 0.9) if n == 1 else rng.uniform(0.4, 0.55))
    centers = [c] if n == 1 else [c - np.array([rad * 1.1, 0]), c + np.array([rad * 1.1, 0])]
    for cc in centers:
        ci = (int(cc[0]), int(cc[1]))
        cv2.circle(m, ci, int(rad), 1, _thick(rng, 2.0, 5.0 * px))
        cv2.circle(m, ci, int(rad * rng.uniform(0.08, 0.2)), 1, -1)
        k, t = int(rng.integers(6, 25)), _thick(rng, 0.9, 1.6 * px)
        for a in np.linspace(0, 2 * math.pi, k, endpoint=False) + rng.uniform(0, 1):
            q = cc + rad * np.array([math.cos(a), math.sin(a)])
            cv2.line(m, ci, (int(q[0]), int(q[1])), 1, t, cv2.LINE_8)
    if n == 2:  # frame between the wheels
        top = c + np.array([rng.uniform(-0.2, 0.2) * rad, -rad * rng.uniform(0.8, 1.3)])
        pts = np.array([centers[0], top, centers[1], c], np.float64)
        cv2.polylines(m, [_poly_pts(pts)], True, 1, _thick(rng, 1.5, 3.5 * px), cv2.LINE_8, shift=4)


def _draw_mixed(m: np.ndarray, rng: np.random.Generator, c: np.ndarray, r: float, px: float) -> None:
    body = _blob(rng, c, r * rng.uniform(0.3, 0.5), rough=0.2)
    cv2.fillPoly(m, [_poly_pts(body)], 1, cv2.LINE_8, 4)
    for _ in range(int(rng.integers(2, 7))):  # legs / antennas / cables
        s = body[int(rng.integers(len(body)))]
        pts = _walk(rng, s, int(rng.integers(10, 40)), step=r * 0.04, turn=rng.uniform(0.02, 0.2))
        cv2.polylines(m, [_poly_pts(pts)], False, 1, _thick(rng, 1.0, 2.5 * px), cv2.LINE_8, shift=4)
    if rng.random() < 0.5:
        cv2.fillPoly(m, [_poly_pts(_blob(rng, c, r * 0.12, 16))], 0, cv2.LINE_8, 4)


_DRAW = {"Wire": _draw_wire, "Mesh": _draw_mesh, "Tree": _draw_tree, "Solid": _draw_solid,
         "Wheel": _draw_wheel, "Mixed": _draw_mixed}


def _object_alpha(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """Anti-aliased object coverage ``[h, w]`` float32 in [0, 1] (drawn at _SS× and area-averaged)."""
    px = min(h, w) / 256.0
    for _ in range(20):
        m = np.zeros((h * _SS, w * _SS), np.uint8)
        c = np.array([rng.uniform(0.38, 0.62) * w, rng.uniform(0.38, 0.62) * h]) * _SS
        r = rng.uniform(0.28, 0.42) * min(h, w) * _SS
        _DRAW[kind](m, rng, c, r, px)
        alpha = cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        if (alpha >= 0.5).mean() >= _MIN_OBJ_FRACTION:
            return alpha
    return alpha


def object_mask(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """A DIS-like object's binary mask, uint8 ``[h, w]`` (0/255: coverage ≥ 0.5), ``kind`` in
    :data:`OBJECT_KINDS`: the shapes of the synthetic dataset, also the GT of ``pdfnet bench metrics``."""
    if kind not in _DRAW:
        raise ValueError(f"kind must be one of {', '.join(OBJECT_KINDS)}, got {kind!r}")
    return _binary(_object_alpha(rng, kind, h, w))


def _binary(alpha: np.ndarray) -> np.ndarray:
    return np.where(alpha >= 0.5, 255, 0).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------
# Scenes


def _background(
    rng: np.random.Generator, h: int, w: int, near_floor: float = NEAR_FLOOR_P
) -> tuple[np.ndarray, np.ndarray]:
    """Cluttered background: RGB ``[h, w, 3]`` (0–255) and depth ``[h, w]`` in [0, 1]: surfaces and clutter
    in [0, _BG_DEPTH_MAX], plus (sometimes) a floor ramping up to the object's depth at the bottom."""
    x, y = _grid(h, w)
    px = min(h, w) / 256.0
    img = _texture(rng, h, w)
    far, near = rng.uniform(0.0, 0.15), rng.uniform(0.25, _BG_DEPTH_MAX)
    depth = far + (near - far) * (y / h) ** rng.uniform(0.7, 2.0)  # a floor/wall receding upwards
    for _ in range(int(rng.integers(2, 7))):  # planar surfaces
        region = np.zeros((h, w), np.uint8)
        pts = _blob(rng, rng.uniform(0, 1, 2) * [w, h], rng.uniform(0.15, 0.5) * min(h, w), 8, 0.4)
        cv2.fillPoly(region, [_poly_pts(pts)], 1, cv2.LINE_8, 4)
        bx, by, bw, bh = cv2.boundingRect(region)
        if bw == 0 or bh == 0:
            continue
        win = (slice(by, by + bh), slice(bx, bx + bw))
        sel = region[win].astype(bool)
        d0, gx, gy = rng.uniform(0.05, 0.45), rng.uniform(-0.3, 0.3) / w, rng.uniform(-0.3, 0.3) / h
        plane = np.clip(d0 + gx * (x[win] - w / 2) + gy * (y[win] - h / 2), 0.0, _BG_DEPTH_MAX)
        img[win][sel] = _texture(rng, bh, bw)[sel]
        depth[win][sel] = plane[sel]
    if rng.random() < near_floor:  # a floor reaching the camera: background as near as the object
        y0 = h * rng.uniform(0.55, 0.85) + (x - w / 2) * rng.uniform(-0.15, 0.15)
        t = np.clip((y - y0) / np.maximum(h - y0, 1.0), 0.0, 1.0)
        sel = t > 0
        d_near = rng.uniform(_OBJ_DEPTH_MIN, 0.85)
        img[sel] = _texture(rng, h, w)[sel]
        depth[sel] = (0.35 + (d_near - 0.35) * t)[sel]
    clutter = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(8, 30))):  # clutter, thin lines included
        kind = int(rng.integers(6))
        p = rng.uniform(0, 1, 2) * [w, h]
        s = rng.uniform(0.03, 0.2) * min(h, w)
        if kind == 0:
            q = (int(p[0] + s), int(p[1] + s * rng.uniform(0.3, 2)))
            cv2.rectangle(clutter, (int(p[0]), int(p[1])), q, 1, -1)
        elif kind == 1:
            cv2.ellipse(clutter, (int(p[0]), int(p[1])), (int(s), int(s * rng.uniform(0.2, 1))),
                        rng.uniform(0, 180), 0, 360, 1, -1)
        elif kind == 2:
            cv2.fillPoly(clutter, [_poly_pts(_blob(rng, p, s, 12, 0.5))], 1, cv2.LINE_8, 4)
        elif kind == 3:
            q = p + rng.normal(0, 0.4, 2) * min(h, w)
            cv2.line(clutter, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), 1,
                     max(1, int(round(rng.uniform(0.8, 2.5) * px))), cv2.LINE_AA)
        else:
            pts = _walk(rng, p, int(rng.integers(15, 60)), s * 0.15, rng.uniform(0.05, 0.4))
            cv2.polylines(clutter, [_poly_pts(pts)], False, 1, max(1, int(round(rng.uniform(0.8, 2.5) * px))),
                          cv2.LINE_AA, shift=4)
        bx, by, bw, bh = cv2.boundingRect(clutter)
        win = (slice(by, by + bh), slice(bx, bx + bw))
        sel = clutter[win].astype(bool)
        img[win][sel] = _color(rng)
        depth[win][sel] = rng.uniform(0.05, _BG_DEPTH_MAX)
        clutter[win] = 0
    depth = depth + (_lowfreq(rng, h, w, int(rng.integers(6, 16))) - 0.5) * 0.08  # chaotic grain
    sigma = rng.uniform(0.0, 1.5) * px  # defocus
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return img, np.clip(depth, 0.0, 1.0).astype(np.float32)


def _object_look(rng: np.random.Generator, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Object surface ``[h, w, 3]`` (zero outside the object's bounding box): a palette texture, shaded,
    far enough in colour from the background around the object."""
    h, w = alpha.shape
    obj = np.zeros((h, w, 3), np.float32)
    ring = cv2.dilate((alpha > 0.05).astype(np.uint8), np.ones((9, 9), np.uint8))
    bx, by, bw, bh = cv2.boundingRect(ring)
    if bw == 0 or bh == 0:
        return obj
    win = (slice(by, by + bh), slice(bx, bx + bw))
    inside = alpha[win] > 0.5
    around = bg[win][ring[win].astype(bool)].mean(0)
    for _ in range(12):
        tex = _texture(rng, bh, bw, smooth=True)
        mean = tex[inside].mean(0) if inside.any() else tex.reshape(-1, 3).mean(0)
        if np.linalg.norm(mean - around) >= _MIN_COLOR_DIST:
            break
    else:  # push away from the surroundings
        tex = np.clip(tex + np.sign(mean - around + 1e-3) * _MIN_COLOR_DIST, 0, 255)
    x, y = _grid(h, w)
    a = rng.uniform(0, 2 * math.pi)
    shade = 0.85 + 0.3 * ((x[win] * math.cos(a) + y[win] * math.sin(a)) / max(h, w) + 0.5)
    obj[win] = np.clip(tex * shade[..., None], 0, 255)
    return obj


def _object_depth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth, coherent object depth ``[h, w]`` in [_OBJ_DEPTH_MIN, 1] (a gently curved tilted plane)."""
    x, y = _grid(h, w)
    xn, yn = x / w - 0.5, y / h - 0.5
    d = (rng.uniform(0.7, 0.9) + rng.uniform(-0.12, 0.12) * xn + rng.uniform(-0.12, 0.12) * yn
         + rng.uniform(-0.1, 0.1) * (xn**2 + yn**2))
    return np.clip(d, _OBJ_DEPTH_MIN, 1.0).astype(np.float32)


def _degrade(rng: np.random.Generator, depth: np.ndarray, model: str) -> np.ndarray:
    """A depth model's view of the true depth: blur, noise, wobble; min–max to uint8 (near = bright)."""
    sigma, noise, wobble = _DEPTH_DEGRADE[model]
    px = min(depth.shape) / 256.0
    d = cv2.GaussianBlur(depth, (0, 0), sigma * px) if sigma > 0 else depth.copy()
    if wobble:
        d = d + (_lowfreq(rng, *depth.shape, 4) - 0.5) * wobble
    if noise:
        d = d + rng.standard_normal(depth.shape, dtype=np.float32) * np.float32(noise)
    lo, hi = float(d.min()), float(d.max())
    d = (d - lo) / max(hi - lo, 1e-6)
    return np.clip(np.round(d * 255.0), 0, 255).astype(np.uint8)


def render_scene(
    rng: np.random.Generator, h: int, w: int, kind: str | None = None, near_floor: float = NEAR_FLOOR_P
) -> dict:
    """Render one synthetic DIS-like scene.

    Returns:
        ``image`` uint8 ``[h, w, 3]`` RGB, ``gt`` uint8 ``[h, w]`` (0/255: coverage ≥ 0.5), ``alpha``
        float32 ``[h, w]`` (object coverage), ``depth`` float32 ``[h, w]`` (true depth, near = large),
        ``depths`` {model: uint8 ``[h, w]``}, ``kind`` str.
    """
    kind = kind or OBJECT_KINDS[int(rng.integers(len(OBJECT_KINDS)))]
    bg, bg_depth = _background(rng, h, w, near_floor)
    alpha = _object_alpha(rng, kind, h, w)
    obj = _object_look(rng, alpha, bg)
    a3 = alpha[..., None]
    img = bg * (1 - a3) + obj * a3
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0, 4))
    depth = bg_depth * (1 - alpha) + _object_depth(rng, h, w) * alpha
    return {
        "image": np.clip(np.round(img), 0, 255).astype(np.uint8),
        "gt": _binary(alpha),
        "alpha": alpha,
        "depth": depth,
        "depths": {m: _degrade(rng, depth, m) for m in DEPTH_MODELS},
        "kind": kind,
    }


# ----------------------------------------------------------------------------------------------------
# Dataset writing


def _encode(ext: str, img: np.ndarray, params: Sequence[int] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    if not ok:  # pragma: no cover - cv2 always encodes uint8 arrays
        raise RuntimeError(f"cannot encode {ext}")
    return buf.tobytes()


def _split_code(split: str) -> int:
    return SPLITS.index(split) if split in SPLITS else sum(split.encode())


def _stem(split: str, index: int) -> str:
    """File stem of image ``index`` of ``split`` (DIS5K-style ``<k>#<group>#<k>#<kind>#<name>``)."""
    kind = OBJECT_KINDS[index % len(OBJECT_KINDS)]
    k = OBJECT_KINDS.index(kind) + 1
    return f"{k}#Synthetic#{k}#{kind}#{split.replace('DIS-', '').lower()}_{index:05d}"


def synth_files(counts: dict[str, int], depth_models: Sequence[str] = DEPTH_MODELS) -> list[str]:
    """Every file (relative path) that :func:`generate_dataset` writes for ``counts``, manifest aside."""
    files = []
    for split, n in counts.items():
        for i in range(n):
            stem = _stem(split, i)
            files += [f"{split}/im/{stem}.jpg", f"{split}/gt/{stem}.png"]
            files += [f"{split}/depth_{m}/{stem}.png" for m in depth_models]
    return files


def _read_manifest(out: Path) -> dict | None:
    """The ``synth.json`` of an earlier run in ``out``, or None when there is none (or not ours)."""
    try:
        meta = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("generator") != "pdfnet.data.synth":
        return None
    counts, models = meta.get("counts"), meta.get("depth_models", list(DEPTH_MODELS))
    ok = (isinstance(counts, dict) and all(isinstance(k, str) and k in SPLITS and isinstance(v, int)
                                          and 0 <= v for k, v in counts.items())
          and isinstance(models, list) and all(isinstance(m, str) and m in DEPTH_MODELS for m in models))
    return meta if ok else None


def _temp_of(p: Path, out: Path) -> str | None:
    """``<dir>/<name>`` for an atomic-write temp file ``.<name>.<random>.tmp``, else None."""
    if not (p.name.startswith(".") and p.name.endswith(".tmp")) or p.name.count(".") < 3:
        return None
    return f"{p.parent.relative_to(out).as_posix()}/{p.name[1:].rsplit('.', 2)[0]}"


def _remove_previous(out: Path, counts: dict[str, int]) -> None:
    """Delete what an earlier ``generate_dataset`` wrote in ``out`` (its manifest says what) and
    nothing else; refuse, deleting nothing, when ``out`` was not made by synth or when the split
    folders synth (re)writes hold files synth did not write."""
    meta = _read_manifest(out)
    if meta is None:
        raise UserError(f"--out {out} is not empty and was not written by pdfnet synth (no valid "
                        f"{MANIFEST}); refusing to delete anything: choose an empty or new folder")
    ours = set(synth_files(meta["counts"], meta.get("depth_models", DEPTH_MODELS)))
    folders = sorted(set(meta["counts"]) | set(counts))
    foreign = []
    for split in folders:
        if (out / split).exists() and not (out / split).is_dir():
            foreign.append(split)
            continue
        for p in sorted((out / split).rglob("*")) if (out / split).is_dir() else []:
            rel = p.relative_to(out).as_posix()
            if p.is_dir() and not p.is_symlink():
                continue
            if rel in ours or _temp_of(p, out) in ours:  # ours, or the temp file of one of ours
                continue
            foreign.append(rel)
    if foreign:
        raise UserError(f"--out {out}: {len(foreign)} file(s) in its split folders were not written by "
                        f"pdfnet synth (e.g. {foreign[0]}); refusing to delete or mix: move them away or "
                        "choose another folder")
    for split in folders:
        if not (out / split).is_dir():
            continue
        for p in sorted((out / split).rglob("*"), key=lambda q: len(q.parts), reverse=True):
            if p.is_dir():
                p.rmdir()  # empty by now: every file in it was ours
            else:
                p.unlink()
        (out / split).rmdir()
    (out / MANIFEST).unlink()


def _render_task(args: tuple[str, str, int, int, float, int, float]) -> str:
    out, split, index, size, aspect_jitter, seed, near_floor = args
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, _split_code(split), index]))
    h = w = size
    if aspect_jitter > 0:
        w = max(16, int(round(size * math.exp(rng.uniform(-aspect_jitter, aspect_jitter)) / 2)) * 2)
    kind = OBJECT_KINDS[index % len(OBJECT_KINDS)]  # balanced kinds
    scene = render_scene(rng, h, w, kind, near_floor)
    stem = _stem(split, index)
    d = Path(out) / split
    atomic_write_bytes(d / "im" / f"{stem}.jpg",
                       _encode(".jpg", cv2.cvtColor(scene["image"], cv2.COLOR_RGB2BGR),
                               (cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY)))
    atomic_write_bytes(d / "gt" / f"{stem}.png", _encode(".png", scene["gt"]))
    for m, dep in scene["depths"].items():
        atomic_write_bytes(d / f"depth_{m}" / f"{stem}.png", _encode(".png", dep))
    return stem


def generate_dataset(
    out: str | os.PathLike,
    counts: dict[str, int] | None = None,
    size: int = 256,
    seed: int = 0,
    aspect_jitter: float = 0.0,
    near_floor: float = NEAR_FLOOR_P,
    workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Write a synthetic DIS-like dataset in the official DIS5K layout (see the module docstring).

    Args:
        out: output folder; must be empty or absent unless ``overwrite``.
        counts: images per split (default: TR 256, VD 64, TE1–4 32 each); splits with 0 are skipped.
        size: image height (and width when ``aspect_jitter`` is 0), ≥ 32.
        seed: dataset seed; the files are a pure function of it.
        aspect_jitter: width = size · exp(U(−a, a)); 0 → square.
        near_floor: share of scenes whose floor comes as near as the object (harder: depth alone no
            longer separates object and background; 0 → the object is always the nearest surface).
        workers: processes (0 → min(4, CPU count); 1 → in-process).
        overwrite: allow a non-empty ``out`` written by an earlier run: the files that run wrote
            (listed by its ``synth.json``) are deleted, nothing else. A folder without that manifest,
            or whose split folders hold other files, is refused and left untouched.
        progress: show a tqdm bar.

    Returns:
        ``{split: count}`` as written.

    Raises:
        UserError: bad arguments, a non-empty ``out`` without ``overwrite``, or one synth did not write.
    """
    counts = dict(SynthSpec().counts) if counts is None else {k: int(v) for k, v in counts.items() if v}
    if size < 32:
        raise UserError(f"--size must be >= 32, got {size}")
    if not 0 <= near_floor <= 1:
        raise UserError(f"--near-floor must be in [0, 1], got {near_floor}")
    if not 0 <= aspect_jitter <= 1:
        raise UserError(f"--aspect-jitter must be in [0, 1], got {aspect_jitter}")
    bad = [k for k, v in counts.items() if v < 0]
    if bad or not counts:
        raise UserError("image counts must be >= 0 and at least one split must have images")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--out {out} is not empty (pass --overwrite to replace a dataset synth wrote "
                            "there)")
        _remove_previous(out, counts)
    out.mkdir(parents=True, exist_ok=True)
    spec = SynthSpec(seed=int(seed), size=int(size), aspect_jitter=float(aspect_jitter),
                     near_floor=float(near_floor), counts=tuple(counts.items()))
    meta = {"generator": "pdfnet.data.synth", "version": 1, **asdict(spec),
            "depth_models": list(DEPTH_MODELS), "counts": counts}
    # the manifest goes first, so even an interrupted run can be replaced with --overwrite
    atomic_write_bytes(out / MANIFEST, (json.dumps({**meta, "complete": False}, indent=2) + "\n").encode())
    tasks = [(str(out), split, i, size, float(aspect_jitter), int(seed), float(near_floor))
             for split, n in counts.items() for i in range(n)]
    workers = min(4, os.cpu_count() or 1) if workers <= 0 else workers
    bar = tqdm(total=len(tasks), desc="synth", unit="img", disable=not progress)
    try:
        if workers == 1 or len(tasks) < 16:
            for t in tasks:
                _render_task(t)
                bar.update()
        else:
            with process_pool(workers, preload=["pdfnet.data.synth"]) as ex:
                for _ in ex.map(_render_task, tasks, chunksize=8):
                    bar.update()
    finally:
        bar.close()
    atomic_write_bytes(out / MANIFEST, (json.dumps({**meta, "complete": True}, indent=2) + "\n").encode())
    return counts


__all__ = ["DEPTH_MODELS", "MANIFEST", "OBJECT_KINDS", "SPLITS", "SynthSpec", "generate_dataset",
           "render_scene", "synth_files"]
