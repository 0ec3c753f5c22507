"""Foreground-estimation benchmark: quality on synthetic composites with a known answer, and speed.

A synthetic composite is built as ``I = α·F + (1 − α)·B`` from a smooth, colourful foreground ``F``, a
differently coloured textured background ``B`` and an alpha with the two kinds of soft edge cut-outs
struggle with: a wide soft ramp around a rough blob (defocus / motion blur) and hundreds of thin
anti-aliased strands leaving it (hair, fur). Because ``F`` is known, the error of an estimate can be
measured where it matters — the soft edge ``0 < α < 1`` — and compared with the naive cut-out, which
keeps ``I`` as the foreground colour.

Reported per method (``naive``, ``blur-fusion``, ``ml``), over the soft-edge pixels, in 0..255 units:

* ``f_err``: mean ``|F̂ − F|`` over channels and pixels (the colour of the cut-out itself);
* ``comp_err``: mean ``α·|F̂ − F|``: the error the cut-out adds when composited on any new background
  (``α·F̂ + (1 − α)·B' − (α·F + (1 − α)·B')``) — the visible halo;
* ``seconds``: wall time of one estimate on the benchmark image (best of ``repeat`` runs, after a
  warm-up that also compiles PyMatting's numba kernels).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pdfnet.inference.foreground import estimate_foreground

#: soft-edge pixels: alpha strictly inside this range
SOFT_LO, SOFT_HI = 0.02, 0.98


@dataclass
class Composite:
    """A synthetic composite and its parts (float32 in [0, 1]; ``image``/``fg``/``bg`` ``[H, W, 3]``,
    ``alpha`` ``[H, W]``)."""

    image: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    bg: np.ndarray


def _smooth_field(rng: np.random.Generator, size: int, cells: int, lo: float, hi: float) -> np.ndarray:
    """Random colour field ``[size, size, 3]`` varying over ~``cells`` cells per side, values in [lo, hi]."""
    small = rng.uniform(lo, hi, (cells + 1, cells + 1, 3)).astype(np.float32)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def _hair_alpha(rng: np.random.Generator, size: int, n_strands: int) -> np.ndarray:
    """Blob with a wide soft ramp plus anti-aliased strands, rendered at 4× and area-downsampled."""
    ss = 4
    big = size * ss
    c = np.array([big / 2, big / 2])
    angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    radii = big * rng.uniform(0.24, 0.30, angles.size)
    pts = np.stack([c[0] + radii * np.cos(angles), c[1] + radii * np.sin(angles)], 1)
    blob = np.zeros((big, big), np.uint8)
    cv2.fillPoly(blob, [pts.astype(np.int32)], 255)
    # soft ramp: ~3 % of the side wide (defocus-like), from a distance transform of the hard blob
    dist_in = cv2.distanceTransform(blob, cv2.DIST_L2, 5)
    dist_out = cv2.distanceTransform(255 - blob, cv2.DIST_L2, 5)
    ramp = 0.03 * big
    soft = np.clip(0.5 + (dist_in - dist_out) / ramp, 0.0, 1.0)
    strands = np.zeros((big, big), np.uint8)
    for _ in range(n_strands):  # curved strands starting on the blob edge, heading outwards
        k = rng.integers(angles.size)
        p = pts[k].copy()
        theta = angles[k] + rng.normal(0, 0.4)
        length = big * rng.uniform(0.05, 0.16)
        steps = 24
        poly = [p.copy()]
        for _ in range(steps):
            theta += rng.normal(0, 0.12)
            p = p + length / steps * np.array([np.cos(theta), np.sin(theta)])
            poly.append(p.copy())
        width = int(rng.integers(2, 7))  # 0.5 .. 1.5 px at the output scale
        cv2.polylines(strands, [np.asarray(poly, np.int32)], False, 255, width, cv2.LINE_AA)
    hi = np.maximum(soft, strands.astype(np.float32) / 255.0)
    return cv2.resize(hi, (size, size), interpolation=cv2.INTER_AREA).clip(0.0, 1.0)


def synthetic_composite(size: int = 512, seed: int = 0) -> Composite:
    """A ``size × size`` composite with soft and hair-like edges (see the module docstring)."""
    rng = np.random.default_rng(seed)
    fg = _smooth_field(rng, size, 4, 0.35, 1.0)  # bright, slowly varying subject colours
    # background: dark-ish, differently tinted, with finer structure than the subject
    bg = 0.6 * _smooth_field(rng, size, 6, 0.0, 0.6) + 0.4 * _smooth_field(rng, size, 24, 0.0, 0.6)
    bg[..., int(rng.integers(3))] *= 0.3
    alpha = _hair_alpha(rng, size, n_strands=max(60, size // 3))
    a = alpha[:, :, None]
    image = a * fg + (1.0 - a) * bg
    return Composite(image=image.astype(np.float32), alpha=alpha.astype(np.float32),
                     fg=fg.astype(np.float32), bg=bg.astype(np.float32))


def edge_errors(estimate: np.ndarray, comp: Composite) -> dict[str, float]:
    """``f_err`` and ``comp_err`` (0..255 units) of a float foreground estimate on the soft edge."""
    soft = (comp.alpha > SOFT_LO) & (comp.alpha < SOFT_HI)
    diff = np.abs(estimate.astype(np.float32) - comp.fg)[soft].mean(axis=1)
    return {"f_err": float(diff.mean() * 255.0),
            "comp_err": float((diff * comp.alpha[soft]).mean() * 255.0),
            "soft_pixels": int(soft.sum())}


def _estimate(method: str, comp: Composite) -> np.ndarray:
    if method == "naive":
        return comp.image
    return estimate_foreground(comp.image, comp.alpha, method=method)


def run_benchmark(
    methods: Sequence[str] = ("naive", "blur-fusion", "ml"),
    *,
    size: int = 2048,
    images: int = 3,
    repeat: int = 3,
    seed: int = 0,
) -> dict:
    """Quality over ``images`` composites of ``size²`` (seeds ``seed..``) and time on the first.

    Returns:
        ``{"size", "images", "methods": {name: {"f_err", "comp_err", "seconds"}}, "factors": {name:
        {"f_err", "comp_err"}}}`` where factors are naive error / method error.
    """
    comps = [synthetic_composite(size, seed + i) for i in range(images)]
    warm = synthetic_composite(64, seed)
    out: dict = {"size": size, "images": images, "seed": seed, "repeat": repeat,
                 "soft_pixels": sum(edge_errors(c.image, c)["soft_pixels"] for c in comps), "methods": {}}
    for m in methods:
        _estimate(m, warm)  # warm-up (numba compiles here)
        errs = [edge_errors(_estimate(m, c), c) for c in comps]
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            _estimate(m, comps[0])
            times.append(time.perf_counter() - t0)
        out["methods"][m] = {"f_err": float(np.mean([e["f_err"] for e in errs])),
                             "comp_err": float(np.mean([e["comp_err"] for e in errs])),
                             "seconds": min(times)}
    if "naive" in out["methods"]:
        base = out["methods"]["naive"]
        out["factors"] = {m: {k: base[k] / max(v[k], 1e-12) for k in ("f_err", "comp_err")}
                          for m, v in out["methods"].items() if m != "naive"}
    return out


def format_summary(res: dict) -> str:
    """A small table of :func:`run_benchmark`'s result."""
    lines = [f"foreground estimation on {res['images']} synthetic composite(s) of {res['size']}² "
             f"(soft edge: {SOFT_LO} < alpha < {SOFT_HI}, {res['soft_pixels']} px; time: best of "
             f"{res['repeat']} on one image)",
             f"{'method':<12} {'F error':>9} {'x naive':>8} {'halo':>8} {'x naive':>8} {'time s':>8}"]
    for m, v in res["methods"].items():
        fac = res.get("factors", {}).get(m)
        f1 = f"{fac['f_err']:.1f}" if fac else "-"
        f2 = f"{fac['comp_err']:.1f}" if fac else "-"
        lines.append(f"{m:<12} {v['f_err']:>9.2f} {f1:>8} {v['comp_err']:>8.2f} {f2:>8} {v['seconds']:>8.3f}")
    lines.append("F error: mean |F_est - F| (0..255) on the soft edge; halo: mean alpha*|F_est - F|, the "
                 "error a composite on a new background shows; x naive: naive error / method error")
    return "\n".join(lines)
