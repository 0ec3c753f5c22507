"""Reading checkpoints: every kind pdfnet loads a model from, and the safetensors release format.

Kinds (what :func:`load_model_for_inference` accepts):

* **train state** (``last.pt`` / ``best.pt``, written by :mod:`pdfnet.engine.checkpoint`): recognised by its
  ``format`` marker; the model weights and the resolved config are read from it;
* **release** (``pdfnet export-weights``, :func:`export_release`): ``model.safetensors`` + the resolved
  ``config.yaml``, a folder or the ``.safetensors`` file;
* a **run directory** (``best.pt`` preferred over ``last.pt``);
* the official ``PDFNet_Best.pth`` (recognised by its keys; its config is the paper model).

Every load is ``weights_only=True`` and strict: a missing or unexpected key raises :class:`CheckpointError`
naming the keys. This module sits in the inference layer so that inference, the engine and the CLI load
checkpoints the same way without the inference code depending on the training engine.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pdfnet.config import Config, load_config, save_config
from pdfnet.errors import CheckpointError, UserError, load_failure_reason
from pdfnet.models import build_model, official
from pdfnet.utils.atomic import atomic_path

TRAIN_STATE_FORMAT = "pdfnet-train-state"
TRAIN_STATE_VERSION = 1
RELEASE_WEIGHTS = "model.safetensors"
RELEASE_CONFIG = "config.yaml"


def torch_load(path: str | os.PathLike) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # disk / permission problems are reported as such (pdfnet.errors.file_system_error)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise CheckpointError(f"cannot read checkpoint {path}: {load_failure_reason(e)}") from None


# --------------------------------------------------------------------------------------------------
# strict state-dict loading


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under DDP / ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):  # DDP
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                           source: str = "") -> None:
    """``model.load_state_dict(strict=True)`` that reports missing/unexpected/mis-shaped keys by name."""
    own = unwrap_model(model).state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        def _few(xs: list[str]) -> str:
            return ", ".join(xs[:5]) + (f" (+{len(xs) - 5} more)" if len(xs) > 5 else "")
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_few(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {_few(shapes)}")
        where = f" {source}" if source else ""
        raise CheckpointError(f"checkpoint{where} does not match the model: " + "; ".join(parts))
    unwrap_model(model).load_state_dict(dict(state_dict), strict=True)


def is_train_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == TRAIN_STATE_FORMAT


def config_from_yaml_text(text: str, source: str = "checkpoint") -> Config:
    """Rebuild a :class:`Config` from YAML text with the strict loader (unknown keys are errors)."""
    fd, tmp = tempfile.mkstemp(prefix="pdfnet-cfg-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return load_config(tmp)
    except UserError as e:
        raise CheckpointError(f"{source}: stored config does not load: {e}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# release (safetensors + config.yaml)


def export_release(model_or_state: nn.Module | Mapping[str, torch.Tensor], cfg: Config,
                   out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/model.safetensors`` and ``out_dir/config.yaml`` (both atomically)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sd = (unwrap_model(model_or_state).state_dict() if isinstance(model_or_state, nn.Module)
          else dict(model_or_state))
    # safetensors refuses aliased storage; a contiguous clone per tensor keeps every key.
    sd = {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}
    with atomic_path(out_dir / RELEASE_WEIGHTS) as tmp:
        save_file(sd, str(tmp), metadata={"format": "pt", "producer": "pdfnet"})
    save_config(cfg, out_dir / RELEASE_CONFIG)
    return out_dir / RELEASE_WEIGHTS


def load_release(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Config]:
    """Read a release: a folder with both files, or a ``.safetensors`` file with ``config.yaml`` beside it."""
    path = Path(path)
    weights = path / RELEASE_WEIGHTS if path.is_dir() else path
    cfg_path = weights.parent / RELEASE_CONFIG
    if not weights.is_file():
        raise CheckpointError(f"release weights not found: {weights}")
    if not cfg_path.is_file():
        raise CheckpointError(f"{weights}: its {RELEASE_CONFIG} is missing (expected at {cfg_path})")
    try:
        sd = load_file(str(weights))
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"cannot read {weights}: {load_failure_reason(e)}") from None
    return sd, load_config(cfg_path)


# --------------------------------------------------------------------------------------------------
# inference loader


def resolve_checkpoint_path(path: Path) -> Path:
    """Folder → the file to load: a release's safetensors, else a run's ``best.pt``, else ``last.pt``."""
    if not path.is_dir():
        return path
    for name in (RELEASE_WEIGHTS, "best.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(f"{path} holds no {RELEASE_WEIGHTS}, best.pt or last.pt")


def load_model_for_inference(path_or_dir: str | os.PathLike, device: torch.device | str = "cpu",
                             ) -> tuple[nn.Module, Config]:
    """Build the model and load weights strictly, from any checkpoint kind pdfnet knows.

    Args:
        path_or_dir: a train state (``.pt``), a release folder or ``.safetensors`` (+ ``config.yaml``),
            a run directory (``best.pt`` preferred over ``last.pt``), or the official ``PDFNet_Best.pth``
            (recognised by its keys; its config is the default paper model).
        device: where the model is placed.

    Returns:
        ``(model, cfg)``: the model in ``eval()`` mode on ``device`` and the config it was built from.

    Raises:
        CheckpointError: one line for an unreadable, malformed (wrong keys or types), mismatched or
            non-finite (NaN/inf weights) checkpoint.

    Building the model never fetches pretrained backbone weights (``model.backbone_weights`` of the
    stored config is ignored): the checkpoint holds every weight, so this works offline.
    """
    path = resolve_checkpoint_path(Path(path_or_dir))
    device = torch.device(device)
    if path.suffix == ".safetensors":
        sd, cfg = load_release(path)
    else:
        obj = torch_load(path)
        if is_train_state(obj):
            sd, cfg = train_state_model(obj, path)
        else:
            model, cfg = _load_official(obj, path)
            check_finite(model, path)
            return model.to(device).eval(), cfg
    # an export may leave out the train-only depth decoder; everything else must match exactly
    has_depth = any(k.startswith("depth_decoder.") for k in sd)
    try:
        model = build_model(replace(cfg.model, backbone_weights=None), with_depth_decoder=has_depth)
    except ValueError as e:
        raise CheckpointError(f"{path}: cannot build its model: {e}") from None
    load_state_dict_strict(model, sd, str(path))
    check_finite(model, path)
    return model.to(device).eval(), cfg


def train_state_model(state: Mapping, path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Config]:
    """``(model state dict, config)`` of a train state, checked: a state with the train-state marker
    but without a ``model`` mapping of tensors or a ``config_yaml`` text is a :class:`CheckpointError`."""
    sd, text = state.get("model"), state.get("config_yaml")
    if not isinstance(sd, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in sd.items()):
        raise CheckpointError(f"{path}: malformed train state (its 'model' entry is not a state dict of "
                              "tensors)")
    if not isinstance(text, str):
        raise CheckpointError(f"{path}: malformed train state (no stored config text 'config_yaml')")
    return dict(sd), config_from_yaml_text(text, str(path))


def check_finite(model: nn.Module, path: str | os.PathLike) -> None:
    """Refuse weights with NaN or inf (they would give empty masks with exit status 0)."""
    bad = [n for n, t in unwrap_model(model).state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        raise CheckpointError(f"{path}: {len(bad)} weight tensor(s) hold NaN or inf, e.g. "
                              f"{', '.join(bad[:3])}{more}; the checkpoint is corrupt or training diverged")


#: keys only the official ``PDFNet_process`` layout has (how ``PDFNet_Best.pth`` is recognised)
OFFICIAL_MARKERS: tuple[str, ...] = ("channel_mix1.0.weight", "decoder.Bside.0.weight", "Glob.0.0.weight")


def is_official_state_dict(sd: Mapping[str, Any]) -> bool:
    return any(k in sd for k in OFFICIAL_MARKERS) or any(k.startswith("decoder.FSE_mix.") for k in sd)


def _load_official(obj: Any, path: Path) -> tuple[nn.Module, Config]:
    """Official ``PDFNet_Best.pth`` → (model, paper config), via ``pdfnet.models.official``."""
    if isinstance(obj, Mapping):
        for wrapper in ("model", "state_dict", "module"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a pdfnet train state, release or official PDFNet state dict")
    if not is_official_state_dict(obj):
        raise CheckpointError(f"{path}: a state dict, but neither a pdfnet checkpoint nor the official "
                              "PDFNet layout (use `pdfnet export-weights` for pdfnet runs)")
    cfg = Config()
    cfg.model = official.official_model_config()
    model = official.from_official_state_dict(obj, cfg=cfg.model)
    return model, cfg
