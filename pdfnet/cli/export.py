"""``pdfnet export``: the segmentation network (image + depth → logits) as an ONNX file."""

from __future__ import annotations

import argparse
import sys

from pdfnet.inference.checkpoint import load_model_for_inference
from pdfnet.inference.export import DEFAULT_ATOL, export_onnx
from pdfnet.inference.hub import resolve_checkpoint
from pdfnet.utils.fs import check_output_file


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Export PDFNet (image [B,3,S,S] + depth [B,1,S,S] -> logits [B,1,S,S]; the train-only "
                     "depth decoder is excluded) to ONNX and check it against PyTorch with onnxruntime.")
    p.add_argument("--ckpt", required=True, metavar="CKPT",
                   help="our release folder/.safetensors, a train checkpoint or run folder, the official "
                        "PDFNet_Best.pth, or a Hugging Face Hub id")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="output file")
    p.add_argument("--size", type=int, default=None,
                   help="input side S, fixed in the graph (default: the checkpoint's model.input_size)")
    p.add_argument("--dynamic-batch", action="store_true", help="symbolic batch axis (default: batch 1)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--no-optimize", dest="optimize", action="store_false",
                   help="skip the exporter's ONNX graph optimisation")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the onnxruntime-vs-PyTorch check")
    p.add_argument("--atol", type=float, default=None,
                   help="max |onnxruntime - torch| on the logits for the check (default 1e-3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.onnx, "--onnx")  # before the (slow) export
    model, cfg = load_model_for_inference(resolve_checkpoint(args.ckpt), "cpu")
    size = args.size or cfg.model.input_size
    report = export_onnx(model, args.onnx, size=size, dynamic_batch=args.dynamic_batch, opset=args.opset,
                         optimize=args.optimize, check=args.check, atol=args.atol or DEFAULT_ATOL)
    batch = "dynamic batch" if report.dynamic_batch else "batch 1"
    print(f"pdfnet export: wrote {report.path} (opset {report.opset}, {size}x{size}, {batch})",
          file=sys.stderr)
    if report.max_abs_diff:
        diffs = ", ".join(f"B={b}: {d:.2e}" for b, d in report.max_abs_diff.items())
        print(f"pdfnet export: onnxruntime vs PyTorch max |diff| on logits: {diffs}", file=sys.stderr)
    return 0
