"""``pdfnet predict``: masks, cutouts and depth for any images and videos, no ground truth needed.

Outputs per input ``<stem>`` in ``--output`` (see :mod:`pdfnet.inference.files`):
``<stem>_mask.png`` (hard 0/255), ``<stem>_alpha.png`` (soft 0..255), ``<stem>_cutout.png`` (RGBA,
foreground colours refined by default), ``<stem>_depth.png`` (8-bit depth that was used),
``<stem>_composite.png`` (with ``--background``). Videos give ``<stem>_<kind>.mp4`` and a folder of
RGBA cut-out frames (:mod:`pdfnet.inference.video`). Files that fail are named on stderr; the others
are processed; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys

from pdfnet.data.check import check_files
from pdfnet.errors import UserError
from pdfnet.inference.files import DEFAULT_SAVE, OUTPUT_KINDS, collect_inputs, parse_save
from pdfnet.inference.foreground import DEFAULT_FOREGROUND, FOREGROUND_METHODS, parse_background
from pdfnet.inference.predictor import Predictor
from pdfnet.inference.run import predict_files
from pdfnet.inference.video import is_video
from pdfnet.utils.fs import check_output_dir
from pdfnet.utils.io import MAX_PIXELS


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Predict dichotomous segmentation masks for arbitrary images. Pseudo-depth comes from "
                     "Depth Anything V2 (computed on the fly) or from --depth-dir.")
    p.add_argument("--ckpt", required=True, metavar="CKPT",
                   help="our release folder/.safetensors, a train checkpoint or run folder, the official "
                        "PDFNet_Best.pth, or a Hugging Face Hub id (e.g. Tennineee/PDFNet)")
    p.add_argument("--input", "-i", required=True, nargs="+", metavar="PATH",
                   help="image or video files, folders (non-recursive) and/or glob patterns (quote them); "
                        "videos (mp4, mov, avi, webm, mkv) are predicted frame by frame")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder (created)")
    depth = p.add_mutually_exclusive_group()
    depth.add_argument("--depth-model", default="large", metavar="NAME",
                       help="Depth Anything V2: small|base|large, a Hub id or a local folder "
                            "(default: large)")
    depth.add_argument("--depth-dir", metavar="DIR",
                       help="read precomputed depth maps <stem>.<ext> from DIR instead (near = bright)")
    p.add_argument("--size", type=int, default=None,
                   help="model input side (default: the checkpoint's model.input_size, 1024 for the release)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=False,
                   help="6-pass test-time augmentation (h-flip × scale 0.75/1/1.25), the release's "
                        "test protocol")
    p.add_argument("--batch-size", type=int, default=1, metavar="N", help="images per forward (default 1)")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default auto)")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "fp16", "bf16"),
                   help="fp32, or autocast to fp16/bf16 (default fp32)")
    p.add_argument("--fast", action="store_true",
                   help="the device's fast path (exact fast up-conv stem, channels_last; on CPU also "
                        "Winograd convs and freed memory kept for reuse; docs/benchmarks.md)")
    p.add_argument("--save", default=",".join(DEFAULT_SAVE), metavar="KINDS",
                   help=f"comma-separated outputs among {','.join(OUTPUT_KINDS)} "
                        f"(default {','.join(DEFAULT_SAVE)})")
    p.add_argument("--threshold", type=float, default=0.5, help="binarisation threshold of the mask (0.5)")
    p.add_argument("--refine-foreground", action=argparse.BooleanOptionalAction, default=True,
                   help="cut-outs/composites use estimated foreground colours, so the old background does "
                        "not bleed into soft edges (default on; --no-refine-foreground keeps the raw RGB)")
    p.add_argument("--foreground-method", choices=FOREGROUND_METHODS, default=DEFAULT_FOREGROUND,
                   help=f"foreground estimator (default {DEFAULT_FOREGROUND}; ml = PyMatting's multi-level "
                        "solver, slower, needs the [matting] extra)")
    p.add_argument("--background", metavar="COLOR|blur|IMAGE",
                   help="also save <stem>_composite.png: the foreground on a colour (white, #00ff00, "
                        "0,255,0), on the image's own background blurred ('blur'), or on an image file")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, metavar="N",
                   help=f"skip images over N pixels, checked from the header before decoding "
                        f"(default {MAX_PIXELS:_}; 0: no bound)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    save = parse_save(args.save)
    if not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {args.threshold}")
    background = None
    if args.background is not None:
        background = parse_background(args.background)
        save = (*save, "composite") if "composite" not in save else save
    elif "composite" in save:
        raise UserError("--save composite needs --background COLOR|blur|IMAGE")
    if args.max_pixels < 0:
        raise UserError(f"--max-pixels must be >= 0, got {args.max_pixels}")
    inputs = collect_inputs(args.input, output=args.output)  # fail fast, before loading any model
    check_output_dir(args.output, "--output")
    # unreadable images (header-level, parallel) are named and skipped before any model is loaded
    unreadable = check_files([p for p in inputs if not is_video(p)], max_pixels=args.max_pixels or None,
                             progress=args.progress)
    for path, reason in unreadable.items():
        print(f"pdfnet predict: skipped {path}: {reason}", file=sys.stderr)
    todo = [p for p in inputs if p not in unreadable]
    if not todo:
        print(f"pdfnet predict: none of the {len(inputs)} input(s) can be read", file=sys.stderr)
        return 1
    predictor = Predictor.from_pretrained(
        args.ckpt, depth_model=None if args.depth_dir else args.depth_model, device=args.device,
        dtype=args.dtype, size=args.size, tta=args.tta, batch_size=args.batch_size,
        fast=args.fast,
    )
    report = predict_files(predictor, todo, args.output, save=save, depth_dir=args.depth_dir,
                           threshold=args.threshold, progress=args.progress, background=background,
                           foreground=args.foreground_method if args.refine_foreground else None,
                           max_pixels=args.max_pixels or None)
    report.failed.update(unreadable)
    n_ok, n_bad = len(report.done), len(report.failed)
    notes = ""
    if inputs.unsupported:
        exts = sorted({p.suffix.lower() or p.name for p in inputs.unsupported})
        notes += f"; ignored {len(inputs.unsupported)} unsupported file(s) ({', '.join(exts[:5])})"
    if inputs.own_outputs:
        notes += f"; left out {len(inputs.own_outputs)} earlier output(s) found in the output folder"
    print(f"pdfnet predict: wrote outputs for {n_ok} of {len(inputs)} input(s) to {args.output}{notes}",
          file=sys.stderr)
    if n_bad:
        print(f"pdfnet predict: {n_bad} file(s) failed: " + ", ".join(str(p) for p in report.failed),
              file=sys.stderr)
        return 1
    return 0
