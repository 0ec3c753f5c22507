"""``pdfnet eval``: evaluate a checkpoint on DIS splits with the DIS protocol.

``pdfnet eval --config FILE --ckpt CKPT [--splits ...] [--tta] [--save-preds DIR] [--out-dir DIR]`` runs the
model on every split (:func:`pdfnet.engine.evaluate.evaluate_model`) and writes per-split JSONs, the paper
tables and plots. ``--tta`` runs the 6-pass flip x scale TTA (default: the config's ``eval.tta``).

``pdfnet eval --pred-dir P --gt-dir G ...`` scores saved predictions instead: it is ``pdfnet score`` (kept
under this name; see :mod:`pdfnet.cli.score`) and imports no torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pdfnet.cli import score
from pdfnet.cli.common import add_config_args, config_from_args
from pdfnet.config import Config
from pdfnet.errors import UserError

_MODEL_ONLY = ("config", "ckpt", "splits", "save_preds", "out_dir", "device", "batch_size", "precision",
               "num_workers", "fast")


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Evaluate a checkpoint on DIS splits (exact DIS protocol: maxF, wF, E, S, MAE, HCE); "
                     "with --pred-dir/--gt-dir, score saved predictions (= pdfnet score).")
    m = p.add_argument_group("checkpoint")
    add_config_args(m)
    m.add_argument("--ckpt", metavar="CKPT", help="checkpoint to evaluate")
    m.add_argument("--splits", nargs="+", metavar="SPLIT",
                   help="DIS splits to evaluate (eval.splits; comma lists work too)")
    m.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="run the 6-pass flip x scale TTA (eval.tta)")
    m.add_argument("--batch-size", type=int, metavar="N", help="images per forward (eval.batch_size)")
    m.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="autocast (eval.precision)")
    m.add_argument("--num-workers", type=int, metavar="N",
                   help="DataLoader worker processes (eval.num_workers)")
    m.add_argument("--fast", action="store_true", default=None,
                   help="the device's inference fast path (eval.fast; docs/benchmarks.md)")
    m.add_argument("--save-preds", metavar="DIR", help="also write the predictions as PNGs")
    m.add_argument("--out-dir", metavar="DIR",
                   help="where per-split JSONs and the report go (default: eval/ beside the checkpoint)")
    m.add_argument("--device", help="auto, cpu, cuda or cuda:N (default auto)")
    score.add_folder_args(p.add_argument_group("saved predictions (= pdfnet score)"), required=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folders = args.pred_dir is not None or args.gt_dir is not None
    if folders:
        model_only = [f"--{k.replace('_', '-')}" for k in _MODEL_ONLY if getattr(args, k) is not None]
        if model_only:
            raise UserError(f"{', '.join(model_only)} only apply to evaluating a checkpoint (--ckpt), "
                            "not to scoring --pred-dir/--gt-dir")
        if args.tta is not None:
            raise UserError("--tta runs TTA when evaluating a checkpoint; to record that saved predictions "
                            "used TTA, give --tta-used")
        return score.run(args)
    folder_only = [f"--{k.replace('_', '-')}" for k in ("json", "metrics", "split", "resolution", "tta_used")
                   if getattr(args, k) is not None] + (["--workers"] if args.workers else [])
    if folder_only:
        raise UserError(f"{', '.join(folder_only)} only apply to scoring --pred-dir/--gt-dir")
    if args.ckpt is None:
        raise UserError("give --config FILE and --ckpt CKPT (evaluate a checkpoint), or --pred-dir and "
                        "--gt-dir (score saved predictions)")
    if args.config is None:
        raise UserError("evaluating a checkpoint needs --config FILE together with --ckpt")
    return _run_model(args)


def _split_list(values: list[str] | None) -> list[str] | None:
    """``["DIS-VD,DIS-TE1", "DIS-TE2"]`` → ``["DIS-VD", "DIS-TE1", "DIS-TE2"]``."""
    if not values:
        return None
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def _eval_config(args: argparse.Namespace) -> Config:
    """The config (file, --set), then the flags on top: each is an alias of an ``eval.*`` key."""
    cfg = config_from_args(args)
    e = cfg.eval
    e.splits = _split_list(args.splits) or list(e.splits)
    for key in ("tta", "batch_size", "precision", "num_workers", "fast"):
        if getattr(args, key) is not None:
            setattr(e, key, getattr(args, key))
    if e.batch_size < 1 or e.num_workers < 0:
        raise UserError("--batch-size must be >= 1 and --num-workers >= 0")
    return cfg


def _run_model(args: argparse.Namespace) -> int:
    # deferred: the checkpoint path needs torch; scoring saved predictions (above) must start without it
    from pdfnet.engine import distributed as D
    from pdfnet.engine.evaluate import evaluate_model
    from pdfnet.utils.device import resolve_device

    cfg = _eval_config(args)
    splits, tta = cfg.eval.splits, cfg.eval.tta
    ckpt = Path(args.ckpt)
    if not ckpt.exists():
        raise UserError(f"--ckpt: {ckpt} does not exist")
    out_dir = Path(args.out_dir) if args.out_dir else (ckpt if ckpt.is_dir() else ckpt.parent) / "eval"
    device = resolve_device(args.device or "auto")
    info = D.init_distributed(device)
    device = D.local_device(device, info)
    try:
        results = evaluate_model(cfg, ckpt, splits=splits, out_dir=out_dir, tta=tta,
                                 save_preds=args.save_preds, device=device, progress=not args.quiet)
    finally:
        D.cleanup()
    if info.is_main:
        keys = ("maxF", "maxF_meanPR", "wF", "meanE", "S", "MAE", "HCE")
        print(f"{'split':10s} " + " ".join(f"{k:>11s}" for k in keys) + f"   (tta={'on' if tta else 'off'})")
        for split, r in results.items():
            cells = [f"{r.get(k, float('nan')):11.1f}" if k == "HCE" else f"{r.get(k, float('nan')):11.4f}"
                     for k in keys]
            print(f"{split:10s} " + " ".join(cells))
        print("maxF: max of the mean F curve (DIS rule); maxF_meanPR: F of mean precision/recall "
              "(the official PDFNet evaluator, the paper's table)")
        print(f"wrote per-split JSONs, tables and plots to {out_dir}")
    return 0
