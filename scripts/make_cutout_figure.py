#!/usr/bin/env python
"""Build the README's cut-out figure: naive vs refined foreground colours on a soft, hair-like edge.

A synthetic composite ``I = α·F + (1 − α)·B`` (``pdfnet.bench.foreground.synthetic_composite``: bright
subject, dark background, a soft ramp and thin strands) is cut out three ways and each cut-out is
placed on white, over the crop with the most soft-edge pixels:

input | naive (``I`` under ``α``) | blur-fusion (the default) | PyMatting ML | truth (``F`` under ``α``)

Each panel title gives the mean colour error on the soft edge of the crop (0..255). Example::

    python scripts/make_cutout_figure.py --out docs/cutout_soft_edge.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pdfnet.bench.foreground import SOFT_HI, SOFT_LO, synthetic_composite
from pdfnet.inference.foreground import composite, estimate_foreground


def _best_crop(alpha: np.ndarray, crop: int) -> tuple[int, int]:
    """Top-left corner of the ``crop``² window (stride crop/4) holding the most soft-edge pixels."""
    soft = ((alpha > SOFT_LO) & (alpha < SOFT_HI)).astype(np.float64)
    ii = np.pad(soft.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, pos = -1.0, (0, 0)
    step = max(1, crop // 4)
    for y in range(0, alpha.shape[0] - crop + 1, step):
        for x in range(0, alpha.shape[1] - crop + 1, step):
            s = ii[y + crop, x + crop] - ii[y, x + crop] - ii[y + crop, x] + ii[y, x]
            if s > best:
                best, pos = s, (y, x)
    return pos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output PNG")
    ap.add_argument("--size", type=int, default=512, help="composite side (default 512)")
    ap.add_argument("--crop", type=int, default=128, help="crop side shown (default 128)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-ml", action="store_true", help="leave out the PyMatting panel")
    args = ap.parse_args(argv)

    import matplotlib  # optional plotting dependency, only for this script

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comp = synthetic_composite(args.size, args.seed)
    y, x = _best_crop(comp.alpha, args.crop)
    sl = (slice(y, y + args.crop), slice(x, x + args.crop))
    alpha = comp.alpha[sl]
    soft = (alpha > SOFT_LO) & (alpha < SOFT_HI)
    white = np.ones((*alpha.shape, 3), np.float32)
    panels = [("input (on its old background)", comp.image[sl], None)]
    methods = [("naive cut-out", comp.image), ("blur-fusion (default)", None)]
    if not args.no_ml:
        methods.append(("PyMatting ML", "ml"))
    for title, how in methods:
        if how is None or isinstance(how, str):
            fg = estimate_foreground(comp.image, comp.alpha, method=how or "blur-fusion")
        else:
            fg = how
        err = float(np.abs(fg[sl] - comp.fg[sl])[soft].mean() * 255)
        panels.append((f"{title}\nsoft-edge error {err:.1f}", composite(fg[sl], alpha, white), err))
    panels.append(("truth: F under alpha", composite(comp.fg[sl], alpha, white), None))

    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), dpi=100)
    for ax, (title, img, _) in zip(axes, panels):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
