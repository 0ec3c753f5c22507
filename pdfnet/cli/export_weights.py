"""``pdfnet export-weights``: a train state → ``model.safetensors`` + ``config.yaml`` (release files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pdfnet.engine.checkpoint import load_train_state
from pdfnet.inference.checkpoint import (
    CheckpointError,
    config_from_yaml_text,
    export_release,
    load_model_for_inference,
    resolve_checkpoint_path,
)


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Write the model weights of a train state (best.pt/last.pt or a run dir, which "
                     "prefers best.pt) as model.safetensors plus the resolved config.yaml, then reload them "
                     "strictly to verify.")
    p.add_argument("ckpt", metavar="CKPT", help="train state (.pt) or run directory")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--inference-only", action="store_true",
                   help="leave out the train-only depth decoder (smaller; cannot resume training from it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = resolve_checkpoint_path(Path(args.ckpt))
    if path.suffix == ".safetensors":
        raise CheckpointError(f"{path} is already a release file")
    state = load_train_state(path)
    cfg = config_from_yaml_text(state["config_yaml"], str(path))
    sd = state["model"]
    if args.inference_only:
        sd = {k: v for k, v in sd.items() if not k.startswith("depth_decoder.")}
    out = export_release(sd, cfg, args.out)
    load_model_for_inference(args.out)  # strict reload: fails loudly if anything does not match
    n = sum(v.numel() for v in sd.values())
    print(f"wrote {out} ({n / 1e6:.2f} M parameters, step {state['step']}) and "
          f"{Path(args.out) / 'config.yaml'}")
    return 0
