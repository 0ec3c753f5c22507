"""Model cards for exported weights, and uploads to the Hugging Face Hub.

``pdfnet export-weights RUN --out DIR --model-card`` writes ``DIR/README.md`` beside ``model.safetensors``
and ``config.yaml``: YAML metadata the Hub reads (license, library, pipeline tag, tags, datasets), how to
use the weights, the validation metrics the run recorded for the exported step (``metrics.jsonl``), the
training command (``env.json``), the resolved config and the citation. ``--push-to-hub REPO_ID`` uploads
that folder with ``huggingface_hub`` (a token is needed; offline mode and network failures are one line).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pdfnet.config.loader import dump_config
from pdfnet.config.schema import Config
from pdfnet.errors import UserError
from pdfnet.utils.atomic import atomic_write_bytes

CARD_NAME = "README.md"
LICENSE = "mit"
LIBRARY_NAME = "pdfnet"
PIPELINE_TAG = "image-segmentation"
TAGS: tuple[str, ...] = ("image-segmentation", "dichotomous-image-segmentation", "background-removal",
                         "salient-object-detection", "depth", "pdfnet", "pytorch", "safetensors")
CITATION = """@inproceedings{liu2026pdfnet,
  title     = {High-Precision Dichotomous Image Segmentation via Depth Integrity-Prior and
               Fine-Grained Patch Strategy},
  author    = {Liu, X. and Fu, K. and Zhao, Q.},
  booktitle = {CVPR},
  year      = {2026}
}"""
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def dataset_name(cfg: Config) -> str:
    """The dataset a config trained on, as a card tag: ``DIS5K`` for DIS5K roots, else the root's name."""
    root = Path(str(cfg.data.root).rstrip("/\\")).name or str(cfg.data.root)
    return "DIS5K" if "dis5k" in root.lower() else root


def validation_metrics(run_dir: str | os.PathLike | None, step: int) -> dict[str, Any] | None:
    """The validation record of ``metrics.jsonl`` at ``step`` (the last one at or before it), or None."""
    if run_dir is None:
        return None
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    best = None
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash: the others still count
        if isinstance(rec, dict) and rec.get("kind") == "val" and int(rec.get("step", -1)) <= step:
            if best is None or int(rec["step"]) >= int(best["step"]):
                best = rec
    return best


def training_command(run_dir: str | os.PathLike | None) -> str | None:
    """The command line that trained the run (``env.json``'s ``argv``), as ``pdfnet train ...``."""
    if run_dir is None or not (Path(run_dir) / "env.json").is_file():
        return None
    try:
        argv = json.loads((Path(run_dir) / "env.json").read_text()).get("argv")
    except (json.JSONDecodeError, OSError, AttributeError):
        return None
    if not argv:
        return None
    args = list(argv[1:]) if Path(str(argv[0])).name in ("pdfnet", "main.py", "__main__.py") else list(argv)
    return "pdfnet " + shlex.join(args) if args else None


def model_card(cfg: Config, *, step: int, metrics: Mapping[str, Any] | None = None,
               command: str | None = None, repo_id: str | None = None, inference_only: bool = False) -> str:
    """The text of ``README.md`` (YAML front matter + Markdown) for exported weights.

    Args:
        cfg: the resolved config of the weights.
        step: the optimizer step of the weights.
        metrics: the validation record for that step (``metrics.jsonl``), if any.
        command: the training command, if known.
        repo_id: the Hub id the card will live at (used in the usage lines), else a local folder.
        inference_only: the depth decoder was left out.
    """
    meta = {"license": LICENSE, "library_name": LIBRARY_NAME, "pipeline_tag": PIPELINE_TAG,
            "tags": list(TAGS), "datasets": [dataset_name(cfg)]}
    where = repo_id or "path/to/this/folder"
    numeric = {k: v for k, v in (metrics or {}).items() if k not in ("kind", "step", "time")
               and isinstance(v, (int, float)) and not isinstance(v, bool)}
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "",
        f"# PDFNet ({cfg.model.backbone}, {cfg.model.input_size}²)", "",
        "Dichotomous image segmentation with PDFNet (Liu, Fu, Zhao, CVPR 2026): RGB plus a pseudo-depth map "
        "from Depth Anything V2 → a high-precision foreground mask. Weights exported by "
        f"`pdfnet export-weights` at step {step}"
        + (" without the train-only depth decoder" if inference_only else "")
        + ": `model.safetensors` + `config.yaml` (verified by a strict reload).", "",
        "## Use", "",
        "```bash",
        f"pdfnet predict --ckpt {where} --input photos/ --output out/ --depth-model large",
        f"pdfnet app --ckpt {where}",
        "```", "",
        "```python",
        "from pdfnet.inference import Predictor",
        f'predictor = Predictor.from_pretrained("{where}", depth_model="large")',
        'mask = predictor("photo.jpg")            # float32 [H, W] in [0, 1]',
        "```", "",
        "## Validation", "",
    ]
    if numeric:
        split = cfg.data.val_split or f"{cfg.data.val_fraction:g} of {cfg.data.train_split} (held out)"
        lines += [f"Recorded by the training run on `{split}` at step {metrics.get('step', step)}:", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
                  for k, v in numeric.items()]
    else:
        lines.append("No validation metrics were recorded for this step in the run directory.")
    lines += ["", "## Training", ""]
    lines += (["```bash", command, "```"] if command else ["The training command was not recorded."])
    lines += ["", "## Config", "", "```yaml", dump_config(cfg).rstrip(), "```", "",
              "## Citation", "", "```bibtex", CITATION, "```", ""]
    return "\n".join(lines)


def write_model_card(out_dir: str | os.PathLike, cfg: Config, *, step: int,
                     run_dir: str | os.PathLike | None = None, repo_id: str | None = None,
                     inference_only: bool = False) -> Path:
    """Write ``out_dir/README.md`` (atomically) from the run directory's records; returns its path."""
    text = model_card(cfg, step=step, metrics=validation_metrics(run_dir, step),
                      command=training_command(run_dir), repo_id=repo_id, inference_only=inference_only)
    return atomic_write_bytes(Path(out_dir) / CARD_NAME, text.encode())


def check_repo_id(repo_id: str) -> str:
    """``owner/name`` or a :class:`UserError`."""
    if not _REPO_ID.match(repo_id):
        raise UserError(f"--push-to-hub {repo_id!r}: expected a Hub repo id like owner/name")
    return repo_id


def push_to_hub(folder: str | os.PathLike, repo_id: str, *, private: bool = False) -> str:
    """Upload ``folder`` to the Hub model repo ``repo_id`` (created when missing); returns its URL.

    Raises:
        UserError: offline mode (``HF_HUB_OFFLINE``), no token (``hf auth login`` or ``HF_TOKEN``), or the
            upload failed (network, permissions) — one line each.
    """
    check_repo_id(repo_id)
    try:  # optional at run time: only uploads need the Hub client
        from huggingface_hub import HfApi, constants, get_token
    except ImportError:
        raise UserError("--push-to-hub needs huggingface_hub: pip install huggingface_hub") from None
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise UserError("--push-to-hub: Hugging Face offline mode is on (HF_HUB_OFFLINE); unset it to upload")
    token = get_token()
    if not token:
        raise UserError("--push-to-hub needs a Hugging Face token: run `hf auth login` or set HF_TOKEN")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", exist_ok=True, private=private)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                          commit_message="pdfnet export-weights")
    except Exception as e:  # network, auth, permissions, quota: all user-facing
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        raise UserError(f"--push-to-hub {repo_id}: upload failed ({msg})") from None
    return f"https://huggingface.co/{repo_id}"
