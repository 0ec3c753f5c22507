"""Fine-tuning: start from released or trained weights (``train.init``) and freeze parts (``train.freeze``).

* :func:`load_init_weights` fills a freshly built model from the official ``PDFNet_Best.pth`` (any
  official-layout state dict), a ``model.safetensors`` release, a plain state dict in our layout, or the
  ``model`` of a train state (its optimizer, schedule and position are ignored: a fine-tuning run starts at
  step 0). Strict by default: every key must match by name and shape, else one
  :class:`~pdfnet.errors.CheckpointError` line. Non-strict loads the keys whose name and shape
  match (the release's ``--finetune``) and reports, per model part, how many were skipped.
* :func:`freeze` sets ``requires_grad=False`` on named parts; the optimizer's parameter groups leave
  frozen parameters out. Frozen parts stay in train mode (dropout and drop-path still act in them).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from pdfnet.errors import UserError
from pdfnet.inference import checkpoint as ckpt
from pdfnet.models.official import convert_official_state_dict

#: ``train.freeze`` names that are not module paths themselves.
FREEZE_ALIASES: dict[str, str] = {"backbone": "encoder.backbone"}


def part_of(key: str) -> str:
    """The model part a state-dict key belongs to (``backbone`` for ``encoder.backbone.*``, else the
    top-level module name) — how skipped keys are counted."""
    for alias, path in FREEZE_ALIASES.items():
        if key.startswith(path + "."):
            return alias
    return key.split(".", 1)[0]


@dataclass
class InitReport:
    """What :func:`load_init_weights` did. Counts are tensors (state-dict entries)."""

    source: str
    kind: str
    loaded: int
    missing: Counter = field(default_factory=Counter)
    """Model keys left at their initial values, by part."""
    unexpected: Counter = field(default_factory=Counter)
    """Checkpoint keys the model has no place for, by part."""
    mismatched: Counter = field(default_factory=Counter)
    """Keys present on both sides with different shapes, by part."""

    def summary(self) -> str:
        line = f"init weights: {self.loaded} tensors from {self.kind} {self.source}"
        for label, counts in (("kept at init (not in the checkpoint)", self.missing),
                              ("skipped, shape differs", self.mismatched),
                              ("skipped, not in the model", self.unexpected)):
            if counts:
                parts = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
                line += f"; {label}: {sum(counts.values())} ({parts})"
        return line


def read_init_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """``(state dict in our key layout, kind)`` from any weights file :func:`load_init_weights` accepts.

    A folder means its ``model.safetensors``, else ``best.pt``, else ``last.pt``.
    """
    p = ckpt.resolve_checkpoint_path(Path(path))
    if not p.is_file():
        raise ckpt.CheckpointError(f"train.init: no weights at {p}")
    if p.suffix == ".safetensors":
        try:
            return dict(load_file(str(p), device="cpu")), "safetensors"
        except Exception as e:  # noqa: BLE001 - any header/format error is a bad file for the user
            raise ckpt.CheckpointError(f"cannot read {p}: {type(e).__name__}: {e}") from None
    obj = ckpt.torch_load(p)
    if ckpt.is_train_state(obj):
        return dict(obj["model"]), "train state (weights only)"
    if isinstance(obj, Mapping):
        for wrapper in ("model", "state_dict", "module"):  # the release's --finetune accepts {"model": sd}
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ckpt.CheckpointError(f"{p}: not a state dict, release or pdfnet train state")
    if ckpt.is_official_state_dict(obj):
        return convert_official_state_dict(obj), "official checkpoint"
    return dict(obj), "state dict"


def load_init_weights(model: nn.Module, path: str | os.PathLike, *, strict: bool = True) -> InitReport:
    """Copy the weights at ``path`` into ``model`` (in place, on the model's device and dtypes).

    Args:
        model: the built model (DDP/compile wrappers are looked through).
        path: official ``.pth``, ``model.safetensors`` (or a release folder), a state dict, a train state.
        strict: every model key present with the same shape and no extra keys; else the matching subset.

    Raises:
        CheckpointError: strict and anything differs (one line naming the first keys and the way out), or
            non-strict and not a single key matches.
    """
    sd, kind = read_init_state_dict(path)
    target = ckpt.unwrap_model(model)
    own = target.state_dict()
    report = InitReport(source=str(path), kind=kind, loaded=0)
    take: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k not in own:
            report.unexpected[part_of(k)] += 1
        elif tuple(v.shape) != tuple(own[k].shape):
            report.mismatched[part_of(k)] += 1
        else:
            take[k] = v
    for k in own:
        if k not in sd:
            report.missing[part_of(k)] += 1
    if strict and (report.missing or report.unexpected or report.mismatched):
        try:
            ckpt.load_state_dict_strict(target, sd, str(path))
        except ckpt.CheckpointError as e:
            raise ckpt.CheckpointError(f"train.init: {e} (train.init_strict=false loads the keys that match "
                                       "by name and shape)") from None
    if not take:
        raise ckpt.CheckpointError(f"train.init: no key of {path} matches the model (another architecture?)")
    target.load_state_dict(take, strict=False)
    report.loaded = len(take)
    return report


def freeze(model: nn.Module, parts: Sequence[str]) -> tuple[int, int]:
    """Stop gradients into ``parts`` (``backbone`` = ``encoder.backbone``, or any module path).

    Returns:
        ``(trainable, total)`` parameter counts (elements) after freezing.

    Raises:
        UserError: a part the model does not have (the message lists the top-level parts).
    """
    target = ckpt.unwrap_model(model)
    for name in parts:
        path = FREEZE_ALIASES.get(name, name)
        try:
            sub = target.get_submodule(path)
        except AttributeError:
            valid = ", ".join([*FREEZE_ALIASES, *(n for n, _ in target.named_children())])
            raise UserError(f"train.freeze: the model has no part {name!r} (use {valid} or a module path "
                            "such as encoder.projector)") from None
        for p in sub.parameters():
            p.requires_grad_(False)
    return trainable_count(target)


def prepare_finetune(model: nn.Module, init: str | None, init_strict: bool, parts: Sequence[str], *,
                     resuming: bool, verbose: bool = True) -> InitReport | None:
    """What ``train.init`` / ``train.freeze`` do to a freshly built model, before its optimizer exists.

    The initial weights are loaded only for a fresh run (a resumed train state holds the fine-tuned
    weights already); freezing applies always, so the optimizer's parameter groups match the train state.
    With ``verbose``, one line each: what was loaded or skipped, and the trainable parameter count.
    """
    report = None
    if init and not resuming:
        report = load_init_weights(model, init, strict=init_strict)
        if verbose:
            print(report.summary())
    elif init and verbose:
        print(f"init weights: not loaded ({init}); the resumed train state has the weights")
    if parts:
        trainable, total = freeze(model, parts)
        if verbose:
            print(f"frozen: {', '.join(parts)}; trainable parameters {trainable:,} of {total:,} "
                  f"({100 * trainable / max(total, 1):.1f} %)")
    return report


def trainable_count(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter elements."""
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


__all__ = ["FREEZE_ALIASES", "InitReport", "freeze", "load_init_weights", "part_of", "prepare_finetune",
           "read_init_state_dict", "trainable_count"]
