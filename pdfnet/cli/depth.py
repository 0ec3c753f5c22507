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
Any other transformers depth model id or directory works with ``--name`` (folder ``depth_<name>``).

Reruns skip finished maps and redo missing or broken ones; ``--overwrite`` redoes everything. Corrupt
inputs are reported by name and skipped, and the command then exits with status 1. Under ``torchrun``
each rank takes a disjoint share of the images.
"""

from __future__ import annotations

import argparse
import sys

import torch

from pdfnet.cli.common import add_config_args, config_from_args
from pdfnet.config import Config
from pdfnet.depth import (
    ALL_ALIASES,
    DEPTH_MODELS,
    TARGET_ALIAS,
    DepthEstimator,
    DepthTarget,
    load_depth_model,
    parse_model_paths,
    plan_dataset,
    plan_folder,
    resolve_source,
    run_depth,
    validate_name,
)
from pdfnet.depth.precompute import is_target_split
from pdfnet.errors import UserError
from pdfnet.utils.device import resolve_device
from pdfnet.utils.layout import find_splits
from pdfnet.utils.ranks import torchrun_env


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
    run_g.add_argument("--workers", type=int, metavar="N", help="decode / write threads (default 4)")
    run_g.add_argument("--overwrite", action="store_true", help="redo finished maps too")
    run_g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(p)
    p.set_defaults(func=run)


def parse_models(spec: list[str], name: str | None) -> tuple[list[tuple[str, str]], bool]:
    """``[(depth name, alias or model id/dir)]`` and whether ``all`` was asked for."""
    tokens = [t.strip() for item in spec for t in item.split(",") if t.strip()]
    if not tokens:
        raise UserError("--model is empty")
    has_all = "all" in tokens
    out: list[tuple[str, str]] = []
    custom = [t for t in tokens if t != "all" and t not in DEPTH_MODELS]
    if len(custom) > 1:
        raise UserError(f"at most one custom model per command, got {', '.join(custom)}")
    if custom and not name:
        raise UserError(f"--name is required for the custom model {custom[0]!r} (folder depth_<name>)")
    if name and not custom:
        raise UserError("--name is only for a custom model id/dir; aliases use their own folder names")
    for t in tokens:
        if t == "all":
            out += [(a, a) for a in ALL_ALIASES]
        elif t in DEPTH_MODELS:
            out.append((t, t))
        else:
            out.append((validate_name(name or ""), t))
    seen: dict[str, str] = {}
    for n, src in out:
        if n in seen and seen[n] != src:
            raise UserError(f"--name {n!r} clashes with the alias of the same name")
        seen[n] = src
    return list(seen.items()), has_all


def _settings(args: argparse.Namespace) -> Config:
    cfg = config_from_args(args)
    d = cfg.depth
    if args.model is not None:
        d.models = [args.model]
    for attr in ("name", "models_dir", "input_size", "batch_size", "dtype", "bit_depth", "format", "workers",
                 "target_splits", "device"):
        v = getattr(args, attr)
        if v is not None:
            setattr(d, attr, v)
    if args.model_path is not None:
        d.model_paths = list(args.model_path)
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = _settings(args)
    d = cfg.depth
    if d.batch_size < 1 or d.workers < 1:
        raise UserError("--batch-size and --workers must be >= 1")
    if d.input_size is not None and d.input_size < 14:
        raise UserError(f"--input-size must be >= 14, got {d.input_size}")
    models, has_all = parse_models(d.models, d.name)
    model_paths = parse_model_paths(d.model_paths)

    folder_form = args.images is not None or args.out is not None
    if folder_form:
        if args.data_root or args.splits:
            raise UserError("use either --images/--out or --data-root/--splits, not both")
        if not (args.images and args.out):
            raise UserError("the folder form needs both --images and --out")
        if len(models) != 1:
            raise UserError("the folder form takes one model; run once per model (or use --data-root)")
        jobs = plan_folder(args.images, args.out, models[0][0], fmt=d.format)
    else:
        root = args.data_root or (cfg.data.root if args.config else None)
        if not root:
            raise UserError("give --data-root DIR (DIS5K layout) or --images DIR --out DIR")
        splits = args.splits
        target_splits = None
        if has_all:
            if d.target_splits is not None:
                target_splits = d.target_splits
            else:
                target_splits = [s for s in (splits or find_splits(root)) if is_target_split(s)]
        jobs = plan_dataset(root, [n for n, _ in models], splits=splits, target_splits=target_splits,
                            fmt=d.format)

    rank, world, local_rank = torchrun_env()
    device = resolve_device(d.device)
    if device.type == "cuda" and world > 1 and device.index is None:
        device = torch.device("cuda", local_rank)
    dtype = None if d.dtype == "auto" else d.dtype

    cache: dict[str, torch.nn.Module] = {}  # one copy of weights shared by large and large_1024

    def loader(name: str, src: str):
        def load() -> DepthEstimator:
            source = resolve_source(src, model_paths, d.models_dir)
            if source not in cache:
                cache[source] = load_depth_model(source)
            input_size = None if src == TARGET_ALIAS else d.input_size
            return DepthEstimator.from_pretrained(
                src, device=device, dtype=dtype, input_size=input_size, batch_size=d.batch_size,
                polarity=args.polarity, model_paths=model_paths, models_dir=d.models_dir,
                model=cache[source],
            )
        return load

    targets = []
    for name, src in models:
        spec = DEPTH_MODELS.get(src)
        size = spec.input_size if spec and (src == TARGET_ALIAS or d.input_size is None) else d.input_size
        targets.append(DepthTarget(name, loader(name, src), size or 518))

    stats = run_depth(
        jobs, targets, bits=d.bit_depth, batch_size=d.batch_size, workers=d.workers,
        overwrite=args.overwrite, rank=rank, world_size=world, progress=not args.no_progress,
    )
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
