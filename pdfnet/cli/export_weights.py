"""``pdfnet export-weights``: a train state → ``model.safetensors`` + ``config.yaml`` (release files),
optionally a model card (``README.md``) and an upload to the Hugging Face Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from pdfnet.engine.checkpoint import load_train_state
from pdfnet.engine.model_card import check_repo_id, push_to_hub, write_model_card
from pdfnet.inference.checkpoint import (
    CheckpointError,
    export_release,
    load_model_for_inference,
    resolve_checkpoint_path,
    train_state_model,
)


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Write the model weights of a train state (best.pt/last.pt or a run dir, which "
                     "prefers best.pt) as model.safetensors plus the resolved config.yaml, then reload them "
                     "strictly to verify.")
    p.add_argument("ckpt", metavar="CKPT", help="train state (.pt) or run directory")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--inference-only", action="store_true",
                   help="leave out the train-only depth decoder (smaller; cannot resume training from it)")
    p.add_argument("--model-card", action="store_true",
                   help="also write README.md: Hub metadata (license, library, tags, datasets), usage, the "
                        "run's validation metrics for this step, the training command, config, citation")
    p.add_argument("--push-to-hub", metavar="REPO_ID",
                   help="upload the folder (with its model card) to this Hugging Face Hub model repo; "
                        "needs a token (hf auth login or HF_TOKEN)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.push_to_hub is not None:
        check_repo_id(args.push_to_hub)  # before any work
    path = resolve_checkpoint_path(Path(args.ckpt))
    if path.suffix == ".safetensors":
        raise CheckpointError(f"{path} is already a release file")
    state = load_train_state(path)
    sd, cfg = train_state_model(state, path)
    if args.inference_only:
        sd = {k: v for k, v in sd.items() if not k.startswith("depth_decoder.")}
    out = export_release(sd, cfg, args.out)
    load_model_for_inference(args.out)  # strict reload: fails loudly if anything does not match
    n = sum(v.numel() for v in sd.values())
    print(f"wrote {out} ({n / 1e6:.2f} M parameters, step {state.get('step', '?')}) and "
          f"{Path(args.out) / 'config.yaml'}")
    if args.model_card or args.push_to_hub:
        card = write_model_card(args.out, cfg, step=int(state.get("step", 0)), run_dir=path.parent,
                                repo_id=args.push_to_hub, inference_only=args.inference_only)
        print(f"wrote {card}")
    if args.push_to_hub:
        print(f"uploaded {args.out} to {push_to_hub(args.out, args.push_to_hub, private=args.private)}")
    return 0
