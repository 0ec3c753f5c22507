"""``pdfnet app``: a local web demo (Gradio) of a checkpoint — upload images, look at the results.

Upload one or more images (or run the bundled synthetic examples) → per image the hard mask, the soft
alpha, the cut-out (foreground colours refined, :mod:`pdfnet.inference.foreground`) and the depth map the
model used, each at the image's own size; a threshold slider (re-thresholds without running the model
again), a TTA toggle, a refinement toggle, and a zip of every output to download. Requests are queued
(one model call at a time); an unreadable file gets a message in the page. The server binds to
127.0.0.1 unless ``--host`` says otherwise, and needs no network: Gradio's analytics are off, the theme
uses system fonts, and nothing is fetched at run time.

Gradio is an optional extra (``pip install -e '.[app]'``); it is imported only here, inside a function.
The model side and the page live in :mod:`pdfnet.cli.app_ui`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from pdfnet.cli.app_ui import DemoBackend, build_demo, theme
from pdfnet.errors import UserError
from pdfnet.inference.predictor import Predictor

APP_EXTRA = "pip install -e '.[app]'"


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Serve a local web page: upload images (or run bundled synthetic examples) and see the "
                     "mask, soft alpha, cut-out and depth map; threshold slider, TTA toggle, downloads. "
                     f"Needs Gradio: {APP_EXTRA}.")
    p.add_argument("--ckpt", required=True, metavar="CKPT",
                   help="release folder/.safetensors, train checkpoint or run folder, PDFNet_Best.pth, or a "
                        "Hub id (a Hub id downloads once; the app itself needs no network)")
    depth = p.add_mutually_exclusive_group()
    depth.add_argument("--depth-model", default="large", metavar="NAME",
                       help="Depth Anything V2: small|base|large, a Hub id or a local folder (default large)")
    depth.add_argument("--depth-dir", metavar="DIR",
                       help="read depth maps <stem>.<ext> for uploaded files from DIR instead")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N (default auto)")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "fp16", "bf16"), help="default fp32")
    p.add_argument("--size", type=int, default=None, help="model input side (default: the checkpoint's)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--examples", type=int, default=3, metavar="N",
                   help="bundled synthetic example images (default 3; 0 = none)")
    p.set_defaults(func=run)


def import_gradio() -> Any:
    """``gradio``, or a one-line :class:`UserError` naming the extra when it is not installed."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home at import or launch
    try:  # optional heavy dependency: only `pdfnet app` needs it
        import gradio
    except ImportError:
        raise UserError(f"pdfnet app needs Gradio, an optional extra: {APP_EXTRA}") from None
    return gradio


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be in 1..65535, got {args.port}")
    if args.examples < 0:
        raise UserError("--examples must be >= 0")
    if args.depth_dir is not None and not Path(args.depth_dir).is_dir():
        raise UserError(f"--depth-dir {args.depth_dir} is not a folder")
    gr = import_gradio()  # before loading any model: a missing extra is the first thing said
    predictor = Predictor.from_pretrained(
        args.ckpt, depth_model=None if args.depth_dir else args.depth_model, device=args.device,
        dtype=args.dtype, size=args.size)
    workdir = Path(tempfile.mkdtemp(prefix="pdfnet-app-"))
    backend = DemoBackend(predictor, workdir, depth_dir=args.depth_dir)
    backend.add_examples(args.examples)
    demo = build_demo(backend, gr)
    print(f"pdfnet app: serving http://{args.host}:{args.port} (Ctrl+C to stop)", flush=True)
    demo.queue(default_concurrency_limit=1, max_size=32).launch(
        server_name=args.host, server_port=args.port, share=False, inbrowser=False, ssr_mode=False,
        mcp_server=False, footer_links=[], allowed_paths=[str(workdir)], theme=theme(gr), quiet=True)
    return 0
