"""Backbone and weight files: reading a plain state dict, ImageNet Swin-B weights, local timm weights.

* :func:`read_state_dict` reads a plain state dict from a ``.pth``/``.pt`` (``weights_only``) or
  ``.safetensors`` file (unwrapping a ``model``/``state_dict``/``module`` key).
* :func:`load_swin_imagenet` loads ImageNet Swin-B weights into the backbone for training from scratch:
  the original release file (``swin_base_patch4_window12_384_22k[to1k].pth``, key ``model``) or a
  timm state dict (``swin_base_patch4_window12_384.ms_in22k_ft_in1k``, timm puts patch merging at the
  start of the next stage), or ``"timm"`` to fetch that hub id (needs network). It keeps keys whose
  name and shape match and returns a report of what was not loaded.
* :func:`load_timm_backbone_file` fills a ``timm:<name>`` backbone from a local timm state dict
  (:func:`pdfnet.models.build_model` calls it when ``model.backbone_weights`` is a path).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError, load_failure_reason
from .swin import SwinTransformer

__all__ = [
    "TIMM_SWIN_B_HUB_ID",
    "BackboneLoadReport",
    "load_swin_imagenet",
    "load_timm_backbone_file",
    "read_state_dict",
]

log = logging.getLogger(__name__)

TIMM_SWIN_B_HUB_ID = "swin_base_patch4_window12_384.ms_in22k_ft_in1k"


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A plain state dict from a ``.pth``/``.pt`` (weights_only) or ``.safetensors`` file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint file not found: {p}")
    try:
        if p.suffix == ".safetensors":
            return dict(load_file(str(p), device="cpu"))
        obj = torch.load(p, weights_only=True, map_location="cpu")
    except OSError:
        raise  # disk / permission problems are reported as such
    except Exception as exc:  # noqa: BLE001 - pickle/zip/header errors of several kinds
        raise CheckpointError(f"cannot read {p} as a weights file: {load_failure_reason(exc)}") from None
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for wrapper in ("model", "state_dict", "module"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p} does not contain a state dict of tensors")
    return dict(obj)




@dataclass
class BackboneLoadReport:
    """What :func:`load_swin_imagenet` did."""

    source: str
    layout: str
    loaded: list[str] = field(default_factory=list)
    not_loaded: list[str] = field(default_factory=list)
    """Backbone parameters left at their init (e.g. the APE and norm0–3, absent from ImageNet files)."""
    ignored: list[str] = field(default_factory=list)
    """Checkpoint keys not used (classifier head, final norm, attn masks, index buffers, mismatches)."""

    def summary(self) -> str:
        return (
            f"{self.source} ({self.layout} layout): loaded {len(self.loaded)} tensors; "
            f"left at init: {', '.join(self.not_loaded) or 'none'}; "
            f"ignored {len(self.ignored)} checkpoint keys"
        )


def _timm_to_release_swin(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm's Swin layout → the original release layout (``layers.{i}.downsample`` → ``layers.{i-1}``)."""
    out = {}
    for k, v in sd.items():
        m = re.match(r"^layers\.(\d+)\.downsample\.(.+)$", k)
        if m:
            k = f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
        out[k] = v
    return out


def _fetch_timm_swin_b() -> dict[str, torch.Tensor]:
    """timm's Swin-B ImageNet weights (network, or timm's / the Hub's cache); a failure is one clear line."""
    import timm  # slow to import; only when fetching the timm weights

    try:
        net = timm.create_model(TIMM_SWIN_B_HUB_ID, pretrained=True)
    except Exception as e:  # noqa: BLE001 - offline, proxy, auth, missing cache: all the user's to fix
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        raise CheckpointError(
            f"model.backbone_weights=timm: cannot fetch {TIMM_SWIN_B_HUB_ID} ({msg}); download a Swin-B "
            "ImageNet checkpoint (e.g. the release's swin_base_patch4_window12_384_22k.pth) and set "
            "model.backbone_weights=PATH, or null to start from random weights") from None
    return {k: v.detach() for k, v in net.state_dict().items()}


def load_swin_imagenet(
    backbone: SwinTransformer, source: str | os.PathLike | Mapping[str, torch.Tensor]
) -> BackboneLoadReport:
    """Load ImageNet Swin weights into our Swin backbone (for training from scratch).

    Args:
        backbone: the :class:`SwinTransformer` to fill in place.
        source: a file (original release ``.pth`` with a ``model`` key, or a timm ``.pth``/``.safetensors``),
            ``"timm"`` for timm's hub id :data:`TIMM_SWIN_B_HUB_ID` (network), or a state dict.

    Returns:
        :class:`BackboneLoadReport`; keys with matching name and shape are loaded, the rest reported.

    Raises:
        CheckpointError: nothing at all matched (wrong file).
    """
    if isinstance(source, Mapping):
        sd, name = dict(source), "state dict"
    elif str(source) == "timm":
        sd, name = _fetch_timm_swin_b(), f"timm hub {TIMM_SWIN_B_HUB_ID}"
    else:
        sd, name = read_state_dict(source), str(source)
    if any(k.startswith("encoder.layers.") for k in sd):  # a full PDFNet/official file: take its encoder
        sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    layout = "release"
    if "layers.3.downsample.reduction.weight" in sd or "head.fc.weight" in sd:
        layout = "timm"
        sd = _timm_to_release_swin(sd)
    own = backbone.state_dict()
    take, ignored = {}, []
    for k, v in sd.items():
        if k in own and tuple(v.shape) == tuple(own[k].shape):
            take[k] = v
        else:
            ignored.append(k)
    if not take:
        raise CheckpointError(f"{name}: no key matches the Swin backbone (is this a Swin checkpoint?)")
    backbone.load_state_dict(take, strict=False)
    report = BackboneLoadReport(
        source=name, layout=layout, loaded=sorted(take), not_loaded=[k for k in own if k not in take],
        ignored=ignored,
    )
    log.info("backbone weights: %s", report.summary())
    return report


def load_timm_backbone_file(backbone: nn.Module, path: str | os.PathLike) -> BackboneLoadReport:
    """Load a local timm state dict into a ``timm:<name>`` backbone (keys matching name and shape).

    The features_only wrapper keeps the original module names, so a classification checkpoint of the
    same model maps directly; its head and unused final layers are reported as ignored.
    """
    sd = read_state_dict(path)
    inner = backbone.model
    own = inner.state_dict()
    take = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not take:
        raise CheckpointError(f"{path}: no key matches the timm backbone {getattr(backbone, 'name', '')!r}")
    inner.load_state_dict(take, strict=False)
    report = BackboneLoadReport(
        source=str(path), layout="timm", loaded=sorted(take), not_loaded=[k for k in own if k not in take],
        ignored=[k for k in sd if k not in take],
    )
    log.info("backbone weights: %s", report.summary())
    return report
