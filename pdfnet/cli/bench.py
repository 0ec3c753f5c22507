"""``pdfnet bench <what>``: benchmarks, one sub-subcommand each (a dispatcher).

``pdfnet bench metrics`` times the DIS metric protocol (ours vs PySODMetrics + the official HCE) on a
prediction/GT folder pair or a generated synthetic set and prints both timings and the ratios (``--json OUT``
for the full record). To add a benchmark, write ``_register_<name>(bsub)`` that adds a parser with
``func=...`` and list it in :data:`BENCHES`.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable

from pdfnet.bench import foreground as bench_foreground
from pdfnet.bench import metrics as bench_metrics
from pdfnet.bench import processes as bench_processes
from pdfnet.cli.bench_speed import BENCHES as _speed_benches
from pdfnet.errors import UserError
from pdfnet.inference.foreground import FOREGROUND_METHODS
from pdfnet.metrics.report import write_json


def _parse_size(s: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1024x1280, got {s!r}") from None
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError("size must be at least 8x8")
    return h, w


def _register_metrics(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser(
        "metrics", help="DIS metrics: ours vs PySODMetrics + official HCE (same values, timings, ratios)",
        description="Time the full DIS protocol (read + F/E/MAE/S/wF + HCE) against PySODMetrics 1.6.2 + the "
                    "official IS-Net HCE in one process: what `pdfnet eval` runs (with its worker "
                    "processes), and per image in one process interleaved with the baseline; cold (empty "
                    "skeleton cache) and cached. Needs the dev extras (pysodmetrics, scikit-image).",
    )
    p.add_argument("--pred-dir", metavar="DIR", help="predictions (at GT size); with --gt-dir")
    p.add_argument("--gt-dir", metavar="DIR", help="GT masks")
    p.add_argument("--synthetic", type=int, default=10, metavar="N",
                   help="without --pred-dir/--gt-dir: generate N synthetic DIS-like pairs (default 10)")
    p.add_argument("--size", type=_parse_size, default=(1024, 1280), metavar="HxW",
                   help="synthetic image size (default 1024x1280)")
    p.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    p.add_argument("--keep", metavar="DIR", help="write the synthetic set here and keep it")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="processes of the timed `pdfnet eval` run, the caller included (0 = automatic, as "
                        "eval)")
    p.add_argument("--repeat", type=int, default=3, metavar="N",
                   help="rounds; every time reported is the best of N (default 3)")
    p.add_argument("--processes", action="store_true",
                   help="instead: time whole processes (interpreter start and imports included), "
                        "`pdfnet score` against a reference process")
    p.add_argument("--no-baseline-cached", action="store_true",
                   help="skip the baseline run with precomputed skeletons")
    p.add_argument("--json", metavar="OUT", help="write the full result JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_metrics)


def _run_metrics(args: argparse.Namespace) -> int:
    try:  # the reference implementations need the dev extras: say so before any work
        import py_sod_metrics  # noqa: F401
        import skimage  # noqa: F401
    except ImportError as e:
        raise UserError(f"bench metrics needs the dev extras (pip install -e '.[dev]'): {e}") from None

    if bool(args.pred_dir) != bool(args.gt_dir):
        raise UserError("give both --pred-dir and --gt-dir, or neither (synthetic data)")
    if args.synthetic < 1:
        raise UserError("--synthetic must be >= 1")
    if args.workers < 0:
        raise UserError("--workers must be >= 0")
    if args.repeat < 1:
        raise UserError("--repeat must be >= 1")
    pred_dir, gt_dir, tmp = bench_metrics.bench_inputs(args.pred_dir, args.gt_dir, args.synthetic, args.size,
                                                       args.seed, args.keep)
    if args.processes:
        try:
            res = bench_processes.time_processes(pred_dir, gt_dir, repeat=args.repeat,
                                                 workers=args.workers or 1)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        print(bench_processes.format_processes(res))
        if args.json:
            print(f"wrote {write_json(res, args.json)}")
        return 0
    try:
        res = bench_metrics.run_benchmark(pred_dir, gt_dir, baseline_cached=not args.no_baseline_cached,
                            workers=args.workers, progress=not args.quiet, repeat=args.repeat)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    res["inputs"] = {"pred_dir": None if tmp else str(pred_dir), "gt_dir": None if tmp else str(gt_dir),
                     "synthetic": None if args.pred_dir else {"n": args.synthetic, "size": list(args.size),
                                                              "seed": args.seed}}
    print(bench_metrics.format_summary(res))
    if args.json:
        print(f"wrote {write_json(res, args.json)}")
    return 0


def _register_foreground(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser(
        "foreground", help="cut-out foreground colours: naive vs blur-fusion vs PyMatting ML (error, time)",
        description="Build synthetic composites I = aF + (1-a)B with soft and hair-like edges, estimate F "
                    "with each method, and report the mean colour error on the soft edge (against the "
                    "known F) and the time of one estimate. 'ml' needs the [matting] extra.",
    )
    p.add_argument("--methods", default="naive,blur-fusion,ml", metavar="LIST",
                   help="comma-separated among naive, blur-fusion, ml (default: all three)")
    p.add_argument("--size", type=int, default=2048, metavar="N", help="composite side (default 2048)")
    p.add_argument("--images", type=int, default=3, metavar="N", help="composites scored (default 3)")
    p.add_argument("--repeat", type=int, default=3, metavar="N", help="timed runs; best reported (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first composite")
    p.add_argument("--json", metavar="OUT", help="write the result JSON")
    p.set_defaults(func=_run_foreground)


def _run_foreground(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in ("naive", *FOREGROUND_METHODS)]
    if bad or not methods:
        raise UserError(f"--methods: unknown {bad or [args.methods]}; choose from naive, "
                        + ", ".join(FOREGROUND_METHODS))
    if args.size < 64 or args.images < 1 or args.repeat < 1:
        raise UserError("--size must be >= 64, --images and --repeat >= 1")
    res = bench_foreground.run_benchmark(methods, size=args.size, images=args.images, repeat=args.repeat,
                                         seed=args.seed)
    print(bench_foreground.format_summary(res))
    if args.json:
        print(f"wrote {write_json(res, args.json)}")
    return 0


#: benchmark name → function adding its sub-subparser
BENCHES: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "metrics": _register_metrics,
    "foreground": _register_foreground,
    **_speed_benches,  # model / train / depth / predict (pdfnet.cli.bench_speed)
}


def configure(p: argparse.ArgumentParser) -> None:
    p.description = "Benchmarks; see `pdfnet bench <what> --help`."
    bsub = p.add_subparsers(dest="bench_command", metavar="<what>")
    for reg in BENCHES.values():
        reg(bsub)

    def _no_target(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_no_target)
