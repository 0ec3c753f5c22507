"""``pdfnet eval``: score predictions with the DIS protocol.

Two modes:

* folders: ``pdfnet eval --pred-dir P --gt-dir G [--json OUT] [--workers N] [--ske-cache DIR]`` scores any
  method's saved predictions (pairing by file stem; predictions of another size are resized to the GT size
  with OpenCV INTER_LINEAR, and the CLI says so);
* model: ``pdfnet eval --config FILE --ckpt CKPT [--splits ...] [--tta] [--save-preds DIR] [--out-dir DIR]``
  runs a checkpoint; it is delegated to ``pdfnet.engine.evaluate.run_model_eval(args)`` (engine side).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pdfnet.cli.common import add_config_args
from pdfnet.errors import UserError

_SHOW = ("maxF", "wF", "meanE", "S", "MAE", "HCE", "meanF", "adpF", "maxE", "adpE", "maxF_meanPR")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score predictions (folders) or a checkpoint with the DIS metrics",
        description="Score predictions with the exact DIS protocol (maxF, wF, E, S, MAE, HCE).",
    )
    g = p.add_argument_group("folder mode")
    g.add_argument("--pred-dir", metavar="DIR", help="folder of prediction maps (8-bit gray PNG/JPG...)")
    g.add_argument("--gt-dir", metavar="DIR", help="folder of GT masks (foreground > 128)")
    g.add_argument("--json", metavar="OUT", help="write the result JSON (dataset, per_image, curves, state)")
    g.add_argument("--workers", type=int, default=0, metavar="N",
                   help="processes in all, this one included (0 = auto: 1 below 16 images, else the CPU "
                        "count up to 8)")
    g.add_argument("--ske-cache", metavar="DIR", default=os.environ.get("PDFNET_SKE_CACHE"),
                   help="cache GT skeletons for HCE here (content-keyed, safe to share between runs; "
                        "default: $PDFNET_SKE_CACHE if set)")
    g.add_argument("--metrics", metavar="LIST",
                   help="comma-separated subset of aggregates (default all), e.g. maxF,MAE,maxF_meanPR")
    g.add_argument("--split", metavar="NAME", help="split name stored in the JSON (e.g. DIS-VD)")
    g.add_argument("--resolution", metavar="R", help="inference resolution to record in the JSON (e.g. 1024)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    m = p.add_argument_group("model mode (engine)")
    add_config_args(m)
    m.add_argument("--ckpt", metavar="CKPT", help="checkpoint to evaluate (model mode)")
    m.add_argument("--splits", nargs="+", metavar="SPLIT", help="DIS splits to evaluate (model mode)")
    m.add_argument("--save-preds", metavar="DIR", help="also write the predictions as PNGs (model mode)")
    m.add_argument("--out-dir", metavar="DIR", help="where per-split JSONs and the report go (model mode)")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (model mode)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="model mode: run flip x scale TTA; folder mode: record whether predictions used it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.ckpt is not None:
        return _run_model(args)
    if args.pred_dir is None or args.gt_dir is None:
        raise UserError("give --pred-dir and --gt-dir (folder mode) or --config and --ckpt (model mode)")
    model_only = [o for o, v in (("--splits", args.splits), ("--save-preds", args.save_preds),
                                 ("--out-dir", args.out_dir)) if v]
    if model_only:
        raise UserError(f"{', '.join(model_only)} only apply to model mode (--ckpt)")
    from pdfnet.metrics import AGGREGATE_KEYS
    from pdfnet.metrics.folders import evaluate_folders
    from pdfnet.metrics.report import write_json

    metrics = AGGREGATE_KEYS
    if args.metrics:
        metrics = tuple(s.strip() for s in args.metrics.split(",") if s.strip())
        bad = [s for s in metrics if s not in AGGREGATE_KEYS]
        if bad:
            raise UserError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(AGGREGATE_KEYS)}")
    if args.workers < 0:
        raise UserError("--workers must be >= 0")
    meta = {"split": args.split, "tta": args.tta, "resolution": args.resolution}
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


def _run_model(args: argparse.Namespace) -> int:
    if args.config is None:
        raise UserError("model mode needs --config FILE together with --ckpt")
    if args.pred_dir or args.gt_dir:
        raise UserError("--pred-dir/--gt-dir (folder mode) and --ckpt (model mode) are exclusive")
    try:
        mod = importlib.import_module("pdfnet.engine.evaluate")
    except ImportError as e:
        raise UserError(f"model evaluation unavailable: cannot import pdfnet.engine.evaluate ({e})") from None
    fn = getattr(mod, "run_model_eval", None)
    if fn is None:
        raise UserError("model evaluation (--ckpt) is not implemented yet "
                        "(pdfnet.engine.evaluate.run_model_eval "
                        "is missing); score saved predictions with --pred-dir/--gt-dir")
    return int(fn(args) or 0)
