"""``pdfnet depth``: precompute pseudo-depth maps with Depth Anything V2 (or any transformers depth model).

Dataset form (fills every depth folder the dataset reads)::

    pdfnet depth --data-root DIS5K --model all \\
        --model-path small=/models/dav2-s --model-path base=/models/dav2-b --model-path large=/models/dav2-l

writes ``<root>/<split>/depth_{small,base,large}/<stem>.png`` for every split and
``depth_large_1024`` for the training splits (``*-TR``; ``--target-splits`` to choose). Folder form::

    pdfnet depth --images my_photos --out my_depth --model large

Weights: ``small/base/large`` are the DAv2 hub ids; offline, point at local ``save_pretrained``
folders with ``--model-path ALIAS=DIR`` (``large`` also serves ``large_1024``) or with
``--models-dir DIR`` / ``$PDFNET_DEPTH_MODELS_DIR`` holding ``Depth-Anything-V2-{Small,Base,Large}-hf``.
Any other transformers depth model id or directory works too: with ``--name`` (folder ``depth_<name>``) in
the dataset form, as it is in the folder form (which writes into ``--out``).

Reruns skip finished maps and redo missing or broken ones; ``--overwrite`` redoes everything. Corrupt
inputs are reported by name and skipped, and the command then exits with status 1. Under ``torchrun``
each rank takes a disjoint share of the images.
"""

from __future__ import annotations

import argparse
import sys

from pdfnet.cli.common import add_config_args, config_from_args
from pdfnet.config import Config, check_ranges
from pdfnet.depth.precompute import precompute_depth
from pdfnet.utils.ranks import torchrun_env

#: flags that set a key of the config's ``depth`` section (flag name = key name)
_DEPTH_KEYS = ("name", "models_dir", "input_size", "batch_size", "dtype", "bit_depth", "format", "threads",
               "target_splits", "device", "max_pixels")


def configure(p: argparse.ArgumentParser) -> None:
    p.description = __doc__
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    where = p.add_argument_group("where")
    where.add_argument("--data-root", metavar="DIR", help="DIS5K-layout root (<root>/<split>/images|im/)")
    where.add_argument("--splits", nargs="+", metavar="SPLIT", help="splits to do (default: all found)")
    where.add_argument("--target-splits", nargs="+", metavar="SPLIT",
                       help="splits that get large_1024 with --model all (default: splits named *-TR)")
    where.add_argument("--images", metavar="DIR", help="folder form: a folder of images")
    where.add_argument("--out", metavar="DIR", help="folder form: output folder (<out>/<stem>.png, or .jpg)")
    what = p.add_argument_group("model")
    what.add_argument("--model", metavar="M",
                      help="all | comma list of small,base,large,large_1024 | a transformers depth model "
                           "id or local dir (then --name); default: config depth.models (all)")
    what.add_argument("--name", help="folder name for a custom model: depth_<name> ([A-Za-z0-9_.-]+)")
    what.add_argument("--model-path", action="append", default=None, metavar="ALIAS=DIR",
                      help="local weights for an alias (repeatable); large=DIR also serves large_1024")
    what.add_argument("--models-dir", metavar="DIR",
                      help="folder holding Depth-Anything-V2-{Small,Base,Large}-hf "
                           "(or $PDFNET_DEPTH_MODELS_DIR)")
    what.add_argument("--input-size", type=int, metavar="N",
                      help="short-side lower bound (default 518; never changes large_1024)")
    what.add_argument("--polarity", choices=("auto", "keep", "invert"), default="auto",
                      help="auto inverts metric-depth models so near = bright (default auto)")
    run_g = p.add_argument_group("run")
    run_g.add_argument("--batch-size", type=int, metavar="N")
    run_g.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto)")
    run_g.add_argument("--dtype", choices=("auto", "fp32", "fp16", "bf16"),
                       help="auto = fp16 on CUDA, fp32 on CPU")
    run_g.add_argument("--bit-depth", type=int, choices=(8, 16), help="PNG bit depth (default 8)")
    run_g.add_argument("--format", choices=("png", "jpg"),
                       help="png (default, lossless) or jpg: 8-bit JPEG at quality 95, as the release's "
                            "depth notebook writes (the same map up to JPEG's loss)")
    run_g.add_argument("--max-pixels", type=int, metavar="N",
                       help="skip images over N pixels, checked from the header before decoding "
                            "(default 100000000; 0: no bound)")
    run_g.add_argument("--threads", "--workers", dest="threads", type=int, metavar="N",
                       help="decode threads and encode/write threads, each (default 4; --workers is the "
                            "older name)")
    run_g.add_argument("--overwrite", action="store_true", help="redo finished maps too")
    run_g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(p)
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Config:
    """The config (file, --set), then the flags on top: each flag is an alias of a ``depth.*`` key."""
    cfg = config_from_args(args)
    d = cfg.depth
    if args.model is not None:
        d.models = [args.model]
    for attr in _DEPTH_KEYS:
        v = getattr(args, attr)
        if v is not None:
            setattr(d, attr, v)
    if args.model_path is not None:
        d.model_paths = list(args.model_path)
    check_ranges(cfg)  # the flags too
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = _settings(args)
    root = args.data_root or (cfg.data.root if args.config else None)
    stats = precompute_depth(cfg, dataset_root=root, splits=args.splits, images=args.images, out=args.out,
                             polarity=args.polarity, overwrite=args.overwrite, progress=not args.no_progress)
    rank, world, _ = torchrun_env()
    prefix = f"[rank {rank}/{world}] " if world > 1 else ""
    print(
        f"{prefix}depth: {stats.images} images, {stats.written} maps written, {stats.skipped} already done, "
        f"{len(stats.failed)} unreadable; {stats.seconds:.1f} s ({stats.images_per_s:.2f} img/s)",
        file=sys.stderr,
    )
    if stats.failed:
        print(f"{prefix}depth: unreadable inputs (skipped):", file=sys.stderr)
        for f in stats.failed:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0
