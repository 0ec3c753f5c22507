"""``pdfnet score``: score saved prediction maps against GT masks with the DIS protocol (no model, no torch).

``pdfnet score --pred-dir P --gt-dir G [--json OUT] [--workers N] [--ske-cache DIR] [--metrics LIST]``

Pairs files by stem; a prediction of another size is resized to its GT's size (OpenCV INTER_LINEAR) and the
command says so. ``--split``, ``--resolution`` and ``--tta-used`` only describe the predictions in the JSON.
``pdfnet eval --pred-dir P --gt-dir G`` is the same command (its older spelling).
"""

from __future__ import annotations

import argparse
import os
import sys

from pdfnet.errors import UserError
from pdfnet.metrics import AGGREGATE_KEYS, evaluate_folders
from pdfnet.metrics.report import write_json
from pdfnet.utils.fs import check_output_file

_SHOW = ("maxF", "wF", "meanE", "S", "MAE", "HCE", "meanF", "adpF", "maxE", "adpE", "maxF_meanPR")


def add_folder_args(p: argparse.ArgumentParser | argparse._ArgumentGroup, *, required: bool) -> None:
    """The arguments of folder scoring (shared with ``pdfnet eval``'s folder form)."""
    p.add_argument("--pred-dir", metavar="DIR", required=required,
                   help="folder of prediction maps (8-bit gray PNG/JPG...)")
    p.add_argument("--gt-dir", metavar="DIR", required=required, help="folder of GT masks (foreground > 128)")
    p.add_argument("--json", metavar="OUT", help="write the result JSON (dataset, per_image, curves, state)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="processes in all, this one included (0 = auto: 1 below 16 images, else the CPU "
                        "count up to 8)")
    p.add_argument("--ske-cache", metavar="DIR", default=os.environ.get("PDFNET_SKE_CACHE"),
                   help="cache GT skeletons for HCE here (content-keyed, safe to share between runs; "
                        "default: $PDFNET_SKE_CACHE if set)")
    p.add_argument("--metrics", metavar="LIST",
                   help="comma-separated subset of aggregates (default all), e.g. maxF,MAE,maxF_meanPR")
    p.add_argument("--split", metavar="NAME", help="split name stored in the JSON (e.g. DIS-VD)")
    p.add_argument("--resolution", metavar="R", help="inference resolution to record in the JSON (e.g. 1024)")
    p.add_argument("--tta-used", action=argparse.BooleanOptionalAction, default=None,
                   help="record in the JSON whether the predictions were made with TTA (nothing is run)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Score a folder of prediction maps against a folder of GT masks with the exact DIS "
                     "protocol (maxF, wF, E, S, MAE, HCE).")
    add_folder_args(p, required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.pred_dir is None or args.gt_dir is None:
        raise UserError("give --pred-dir and --gt-dir")
    metrics = AGGREGATE_KEYS
    if args.metrics:
        metrics = tuple(s.strip() for s in args.metrics.split(",") if s.strip())
        bad = [s for s in metrics if s not in AGGREGATE_KEYS]
        if bad:
            raise UserError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(AGGREGATE_KEYS)}")
    if args.workers < 0:
        raise UserError("--workers must be >= 0")
    meta = {"split": args.split, "tta": args.tta_used, "resolution": args.resolution}
    if args.json:  # before scoring: a wrong --json must not cost the whole run
        check_output_file(args.json, "--json")
    doc = evaluate_folders(args.pred_dir, args.gt_dir, workers=args.workers, skeleton_cache=args.ske_cache,
                           metrics=metrics, progress=not args.quiet, meta=meta)
    _print_summary(doc)
    if args.json:
        path = write_json(doc, args.json)
        print(f"wrote {path}")
    return 0


def _print_summary(doc: dict) -> None:
    ds = doc["dataset"]
    meta = doc["meta"]
    print(f"{ds['n_images']} images, {meta['time_s']:.1f} s, {meta['workers']} process(es)")
    notes = {"maxF": "max of the mean F curve (DIS rule)",
             "maxF_meanPR": "F of mean precision/recall (official PDFNet evaluator)"}
    for k in _SHOW:
        if k in ds and k in notes:
            v = ds[k]
            print(f"  {k:12s} {'nan' if v is None else f'{v:.4f}'}   {notes[k]}")
        elif k in ds:
            v = ds[k]
            print(f"  {k:12s} {'nan' if v is None else (f'{v:.2f}' if k == 'HCE' else f'{v:.4f}')}")
    if meta.get("n_resized"):
        names = meta["resized"]
        more = f" ... ({len(names)} in all)" if len(names) > 5 else ""
        print(f"note: {len(names)} prediction(s) differ in size from their GT and were resized to GT size "
              f"(cv2 INTER_LINEAR): {', '.join(names[:5])}{more}", file=sys.stderr)
    und = ds.get("S_undefined")
    if und:
        print(f"note: S is undefined (NaN) for {und} image(s) (GT centroid on the last row/column); "
              "the dataset S averages the others", file=sys.stderr)
