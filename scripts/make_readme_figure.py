#!/usr/bin/env python
"""Build the README's predict figure from a ``pdfnet predict`` output folder.

One row per image: input | depth | mask | cutout (cutout over a checkerboard), each panel scaled to
``--height`` pixels, with a label strip on top. Everything comes from the predict outputs: the input
RGB is the cutout's colour channels (``<stem>_cutout.png``), the depth is ``<stem>_depth.png`` (or
``--depth-dir/<stem>.*``), the mask is ``<stem>_mask.png`` (``--soft`` uses ``<stem>_alpha.png``).

Example (after the demo run, asking predict for the depth too)::

    pdfnet predict --ckpt demo_out/run/best.pt --input demo_out/data/DIS-TE2/im \\
        --depth-dir demo_out/data/DIS-TE2/depth_large_1024 --output demo_out/predict \\
        --save mask,alpha,cutout,depth --device cpu
    python scripts/make_readme_figure.py --pred-dir demo_out/predict --out docs/predict_example.png --rows 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from pdfnet.utils.io import IMAGE_EXTS, read_gray, write_image

LABELS = ("input", "depth", "mask", "cutout")


def _read_rgba(path: Path) -> np.ndarray:
    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        raise SystemExit(f"make_readme_figure: {path} is not an RGBA PNG (a pdfnet predict cutout)")
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def _depth_for(stem: str, pred_dir: Path, depth_dir: Path | None) -> np.ndarray:
    p = pred_dir / f"{stem}_depth.png"
    if p.is_file():
        return read_gray(p)
    if depth_dir is not None:
        for ext in IMAGE_EXTS:
            q = depth_dir / f"{stem}{ext}"
            if q.is_file():
                return read_gray(q)
    raise SystemExit(f"make_readme_figure: no depth for {stem!r}: run predict with --save ...,depth "
                     "or pass --depth-dir")


def _checker(h: int, w: int, cell: int = 12) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // cell) + (xx // cell)) % 2 == 0, 205, 245).astype(np.float32)
    return np.repeat(board[..., None], 3, axis=2)


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    width = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def _label(text: str, width: int, strip: int = 24) -> np.ndarray:
    bar = np.full((strip, width, 3), 255, np.uint8)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
    org = ((width - tw) // 2, (strip + th) // 2)
    cv2.putText(bar, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1, cv2.LINE_AA)
    return bar


def build_row(stem: str, pred_dir: Path, depth_dir: Path | None, height: int, soft: bool) -> list[np.ndarray]:
    """The four panels (RGB uint8, same height) of one image."""
    rgba = _read_rgba(pred_dir / f"{stem}_cutout.png")
    rgb = rgba[..., :3]
    depth = _depth_for(stem, pred_dir, depth_dir)
    mask_path = pred_dir / f"{stem}_{'alpha' if soft else 'mask'}.png"
    mask = read_gray(mask_path) if mask_path.is_file() else rgba[..., 3]
    depth = cv2.resize(depth, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    depth_rgb = cv2.applyColorMap(depth, cv2.COLORMAP_INFERNO)[..., ::-1]
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    cut = (rgb.astype(np.float32) * a + _checker(*rgb.shape[:2]) * (1 - a) + 0.5).astype(np.uint8)
    panels = [rgb, depth_rgb, np.repeat(mask[..., None], 3, axis=2), cut]
    return [_fit(np.ascontiguousarray(p), height) for p in panels]


def make_figure(pred_dir: Path, stems: list[str], depth_dir: Path | None = None, height: int = 256,
                soft: bool = False, gap: int = 6) -> np.ndarray:
    """Stack :func:`build_row` rows under a label strip into one RGB uint8 image (white gaps/margin)."""
    rows = [build_row(s, pred_dir, depth_dir, height, soft) for s in stems]
    widths = [max(r[i].shape[1] for r in rows) for i in range(4)]

    def hcat(cells: list[np.ndarray]) -> np.ndarray:
        vgap = np.full((cells[0].shape[0], gap, 3), 255, np.uint8)
        return np.concatenate([x for c in cells for x in (c, vgap)][:-1], axis=1)

    def pad_to(p: np.ndarray, w: int) -> np.ndarray:
        extra = w - p.shape[1]
        return np.pad(p, ((0, 0), (extra // 2, extra - extra // 2), (0, 0)), constant_values=255)

    lines = [hcat([_label(LABELS[i], w) for i, w in enumerate(widths)])]
    lines += [hcat([pad_to(r[i], w) for i, w in enumerate(widths)]) for r in rows]
    hgap = np.full((gap, lines[0].shape[1], 3), 255, np.uint8)
    fig = np.concatenate([x for line in lines for x in (line, hgap)][:-1], axis=0)
    return np.pad(fig, ((gap, gap), (gap, gap), (0, 0)), constant_values=255)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pred-dir", required=True, type=Path, help="a pdfnet predict --output folder")
    ap.add_argument("--out", type=Path, default=Path("docs/predict_example.png"), help="figure PNG")
    ap.add_argument("--stems", nargs="*", default=None, help="images to show (default: the first --rows)")
    ap.add_argument("--rows", type=int, default=3, help="number of images when --stems is not given")
    ap.add_argument("--depth-dir", type=Path, default=None, help="depth maps <stem>.* if predict saved none")
    ap.add_argument("--height", type=int, default=256, help="panel height in pixels")
    ap.add_argument("--soft", action="store_true", help="show the soft alpha instead of the hard mask")
    args = ap.parse_args(argv)
    stems = args.stems or sorted(p.name[: -len("_cutout.png")] for p in args.pred_dir.glob("*_cutout.png"))
    stems = stems if args.stems else stems[: args.rows]
    if not stems:
        print(f"make_readme_figure: no <stem>_cutout.png in {args.pred_dir}", file=sys.stderr)
        return 2
    fig = make_figure(args.pred_dir, stems, args.depth_dir, args.height, args.soft)
    write_image(args.out, fig)
    print(f"make_readme_figure: wrote {args.out} ({fig.shape[1]}x{fig.shape[0]}, {len(stems)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
