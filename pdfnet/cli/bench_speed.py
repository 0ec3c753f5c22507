"""``pdfnet bench {model,train,depth,predict}``: speed benchmarks, candidate vs baseline side by side.

Registered into the ``pdfnet bench`` dispatcher (:mod:`pdfnet.cli.bench`) through :data:`BENCHES`.
Each run builds the workload's cases (:mod:`pdfnet.bench.workloads`), times them in this process
with :func:`pdfnet.bench.harness.run_cases`, prints a table and optionally writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from pdfnet.bench.harness import run_cases
from pdfnet.bench.workloads import TrainOptions, depth_cases, model_cases, predict_cases, train_cases
from pdfnet.cli.common import add_config_args, config_from_args
from pdfnet.errors import UserError
from pdfnet.inference.fast import FastPathOptions
from pdfnet.utils.device import resolve_device

DTYPE_CHOICES = ("fp32", "bf16", "fp16")


def _common(p: argparse.ArgumentParser, *, model: bool = True, baseline_default: str = "fp32",
            dtype_default: str = "bf16") -> None:
    if model:
        add_config_args(p)
        p.add_argument("--backbone", metavar="NAME",
                       help="override model.backbone (e.g. swin_tiny_test for a CPU-sized run)")
        p.add_argument("--size", type=int, metavar="S", help="input size S (default: the config's, 1024)")
    p.add_argument("--batch-size", type=int, default=1, metavar="N", help="candidate batch size (default 1)")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default=dtype_default,
                   help=f"candidate autocast dtype (default {dtype_default})")
    p.add_argument("--baseline", choices=(*DTYPE_CHOICES, "none"), default=baseline_default,
                   help=f"baseline: eager, no fast paths, this dtype (default {baseline_default}); "
                        "none = skip")
    p.add_argument("--baseline-batch-size", type=int, metavar="N",
                   help="baseline batch (default: --batch-size)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed iterations (default 3)")
    p.add_argument("--iters", type=int, default=10, metavar="N", help="timed iterations; median (default 10)")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count")
    p.add_argument("--json", metavar="OUT", help="write the full report (all cases, env, ratios) here")
    p.add_argument("--quiet", action="store_true", help="no per-case progress lines")
    p.add_argument("--interleave", action=argparse.BooleanOptionalAction, default=None,
                   help="set all cases up, then alternate their timed iterations (default: on for CPU, "
                        "where other jobs make sequential timings drift; off for CUDA)")


def _fast_flags(p: argparse.ArgumentParser, *, cudagraphs: bool = True) -> None:
    if cudagraphs:  # the inference workloads (model, predict)
        p.add_argument("--fast", action="store_true",
                       help="the device's fast path (FastPathOptions.best_for: exact fast up-conv stem, "
                            "channels_last; on CPU also Winograd convs and --retain-memory); the flags "
                            "below add to it, --dtype sets the dtype")
        p.add_argument("--winograd", action="store_true",
                       help="CRS 3×3 convs as Winograd F(4×4, 3×3) (fp32 inference)")
        p.add_argument("--retain-memory", action="store_true",
                       help="keep freed host memory for reuse (glibc; no page faults per temporary)")
    p.add_argument("--channels-last", action="store_true", help="NHWC weights and activations")
    p.add_argument("--fast-upconv", action="store_true", help="exact fast up-conv stem (no 4S×4S tensor)")
    p.add_argument("--compile", action="store_true", help="torch.compile the candidate")
    p.add_argument("--compile-mode", choices=("default", "reduce-overhead", "max-autotune",
                                              "max-autotune-no-cudagraphs"), default="default",
                   help="torch.compile mode (default: default)")
    if cudagraphs:
        p.add_argument("--cudagraphs", action="store_true",
                       help="capture the candidate forward in a CUDA graph per shape (CUDA only)")
        p.add_argument("--tf32", action="store_true", help="allow TF32 for fp32 matmuls/convs (CUDA)")


def _model_config(args: argparse.Namespace):
    cfg = config_from_args(args).model
    if args.backbone:
        cfg.backbone = args.backbone
    if args.size:
        cfg.input_size = args.size
    return cfg


def _check_counts(args: argparse.Namespace) -> None:
    for name in ("batch_size", "iters"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        raise UserError("--warmup must be >= 0")
    if args.baseline_batch_size is not None and args.baseline_batch_size < 1:
        raise UserError("--baseline-batch-size must be >= 1")


def _inference_options(args: argparse.Namespace, device):
    if device.type != "cuda" and "fp16" in (args.dtype, args.baseline):
        raise UserError("fp16 needs CUDA; on CPU use --dtype bf16 or fp32")
    if getattr(args, "cudagraphs", False) and device.type != "cuda":
        raise UserError("--cudagraphs needs a CUDA device")
    fast = FastPathOptions.best_for(device, args.dtype) if args.fast else FastPathOptions(dtype=args.dtype)
    cand = FastPathOptions(
        dtype=args.dtype, channels_last=args.channels_last or fast.channels_last,
        fast_upconv=args.fast_upconv or fast.fast_upconv, winograd=args.winograd or fast.winograd,
        retain_memory=args.retain_memory or fast.retain_memory,
        compile=args.compile, compile_mode=None if args.compile_mode == "default" else args.compile_mode,
        cudagraphs=getattr(args, "cudagraphs", False), tf32=True if getattr(args, "tf32", False) else None,
    )
    base = None if args.baseline == "none" else FastPathOptions(dtype=args.baseline)
    return cand, base


def _finish(args: argparse.Namespace, report) -> int:
    print(report.format_table())
    if args.json:
        print(f"wrote {report.write_json(args.json)}")
    failed = [r for r in report.results if r.error]
    return 1 if failed else 0


def _interleave(args: argparse.Namespace, device) -> bool:
    return device.type != "cuda" if args.interleave is None else bool(args.interleave)


def _log(args: argparse.Namespace) -> Callable[[str], None] | None:
    return None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def _settings(args: argparse.Namespace, **extra) -> dict:
    keep = {k: v for k, v in vars(args).items() if k not in ("func",) and not callable(v)}
    return {**keep, **extra}


def _time_cases(args: argparse.Namespace, workload: str, device, build: Callable[[], list],
                **settings) -> int:
    """Build the cases (a ``ValueError`` there is a user error), time them, print/write the report."""
    try:
        cases = build()
    except ValueError as e:
        raise UserError(str(e)) from None
    rep = run_cases(workload, cases, device, warmup=args.warmup, iters=args.iters,
                    count_flops_=not args.no_flops, interleave=_interleave(args, device),
                    settings=_settings(args, **settings), log=_log(args))
    return _finish(args, rep)


def _run_model(args: argparse.Namespace) -> int:
    _check_counts(args)
    device = resolve_device(args.device)
    cfg = _model_config(args)
    cand, base = _inference_options(args, device)
    return _time_cases(args, "model", device, lambda: model_cases(
        cfg, device, batch_size=args.batch_size, candidate=cand, baseline=base,
        baseline_batch_size=args.baseline_batch_size), model=vars(cfg))


def _run_train(args: argparse.Namespace) -> int:
    _check_counts(args)
    device = resolve_device(args.device)
    if device.type != "cuda" and args.dtype == "fp16":
        raise UserError("fp16 training needs CUDA (GradScaler); on CPU use --dtype bf16 or fp32")
    cfg = _model_config(args)
    cand = TrainOptions(
        dtype=args.dtype, channels_last=args.channels_last, fast_upconv=args.fast_upconv,
        compile=args.compile,
        compile_mode=None if args.compile_mode == "default" else args.compile_mode,
        grad_checkpointing=args.grad_checkpointing, fused_adamw=args.fused_adamw,
    )
    # On CPU the release's fp16 AMP baseline runs in fp32 (no CPU GradScaler), as the trainer does;
    # label it as what it is.
    base_dtype = "fp32" if (args.baseline == "fp16" and device.type != "cuda") else args.baseline
    base = None if args.baseline == "none" else TrainOptions(dtype=base_dtype)
    return _time_cases(args, "train", device, lambda: train_cases(
        cfg, device, batch_size=args.batch_size, candidate=cand, baseline=base,
        baseline_batch_size=args.baseline_batch_size, optim_cfg=config_from_args(args).optim),
        model=vars(cfg))


def _run_depth(args: argparse.Namespace) -> int:
    _check_counts(args)
    device = resolve_device(args.device)
    if device.type != "cuda" and "fp16" in (args.dtype, args.baseline):
        raise UserError("fp16 needs CUDA; on CPU use --dtype bf16 or fp32")
    return _time_cases(args, "depth", device, lambda: depth_cases(
        args.depth_model, device, batch_size=args.batch_size, dtype=args.dtype,
        baseline_dtype=None if args.baseline == "none" else args.baseline,
        image_hw=(args.image_size, args.image_size), input_size=args.input_size))


def _run_predict(args: argparse.Namespace) -> int:
    _check_counts(args)
    device = resolve_device(args.device)
    cfg = _model_config(args)
    cand, base = _inference_options(args, device)
    depth_dtype = args.depth_dtype or args.dtype
    if device.type != "cuda" and "fp16" in (depth_dtype, args.baseline_depth_dtype):
        raise UserError("fp16 needs CUDA; on CPU use bf16 or fp32 for the depth model")
    return _time_cases(args, "predict", device, lambda: predict_cases(
        cfg, args.depth_model, device, batch_size=args.batch_size, candidate=cand,
        depth_dtype=depth_dtype, baseline=base, baseline_depth_dtype=args.baseline_depth_dtype,
        image_hw=(args.image_size, args.image_size), depth_input_size=args.depth_input_size),
        model=vars(cfg))


_DEPTH_HELP = ("depth model: small/base/large/large_1024, a hub id or local dir (real weights), or "
               "random:small|base|large|tiny (same architecture, random weights: speed does not depend on "
               "values, no download)")


def _register_model(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("model", help="PDFNet inference (P0 logits), candidate fast paths vs fp32 eager",
                        description="Time PDFNet inference (segmentation network, no depth decoder) with the "
                                    "chosen fast paths against an eager baseline in the same process.")
    _common(p)
    _fast_flags(p)
    p.set_defaults(func=_run_model)


def _register_train(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser(
        "train", help="one PDFNet training step (forward+loss+backward+AdamW) vs the release",
        description="Time a full training step (depth decoder, full PDFNet loss, AdamW with the release's "
                    "parameter groups) against the release recipe (fp16 AMP eager).")
    _common(p, baseline_default="fp16")
    _fast_flags(p, cudagraphs=False)
    p.add_argument("--grad-checkpointing", action="store_true", help="recompute backbone blocks in backward")
    p.add_argument("--fused-adamw", action="store_true",
                   help="fused AdamW (CUDA; with fp16 the GradScaler's inf check stays on the GPU: "
                        "no host sync)")
    p.set_defaults(func=_run_train)


def _register_depth(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("depth", help="Depth Anything V2 throughput (preprocess + forward + postprocess)",
                        description="Time the GPU part of `pdfnet depth` on random images already on the "
                                    "device.")
    _common(p, model=False, dtype_default="fp16")
    p.add_argument("--depth-model", default="random:large", help=_DEPTH_HELP + " (default random:large)")
    p.add_argument("--image-size", type=int, default=518, metavar="N", help="square source image side (518)")
    p.add_argument("--input-size", type=int, default=518, metavar="N", help="network short side (518)")
    p.set_defaults(func=_run_depth, batch_size=8)


def _register_predict(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("predict", help="end to end: DAv2 depth + PDFNet + mask post-processing",
                        description="Time end-to-end prediction on decoded images (depth, resize, PDFNet, "
                                    "sigmoid, resize back, uint8 on the host) against fp32 eager.")
    _common(p)
    _fast_flags(p)
    p.add_argument("--depth-model", default="random:large", help=_DEPTH_HELP + " (default random:large)")
    p.add_argument("--depth-dtype", choices=DTYPE_CHOICES, help="candidate depth dtype (default: --dtype)")
    p.add_argument("--baseline-depth-dtype", choices=DTYPE_CHOICES, default="fp32",
                   help="baseline depth dtype (default fp32)")
    p.add_argument("--image-size", type=int, default=1024, metavar="N",
                   help="square source image side (1024)")
    p.add_argument("--depth-input-size", type=int, default=518, metavar="N", help="depth network size (518)")
    p.set_defaults(func=_run_predict)


#: sub-subcommands of ``pdfnet bench`` defined here (merged into :data:`pdfnet.cli.bench.BENCHES`)
BENCHES: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "model": _register_model,
    "train": _register_train,
    "depth": _register_depth,
    "predict": _register_predict,
}
