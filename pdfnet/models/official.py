"""Official weights: the released PDFNet checkpoint (ImageNet backbone weights: :mod:`.backbone_weights`).

* :func:`convert_official_state_dict` maps the official ``PDFNet_process`` layout (the key list of the
  release's ``PDFNet_Best.pth``) to this package's module names.
* :func:`from_official_state_dict` / :func:`load_official_checkpoint` build the paper-config model and
  load it **strictly**: every parameter must be mapped, shapes must agree; a missing or extra key raises
  :class:`~pdfnet.errors.CheckpointError` naming it. The 24 Swin ``relative_position_index``
  buffers may be present or absent (they are rebuilt; if present they must equal the standard index),
  and so may the loss's two frozen ``IntegrityPriorLoss.sobel_*`` tensors (they must equal the Sobel
  constants).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import nn

from ..config.schema import ModelConfig
from ..errors import CheckpointError
from ..utils.sobel import sobel_kernels
from .backbone_weights import read_state_dict
from .factory import build_model
from .pdfnet import PDFNet
from .swin import relative_position_index

__all__ = [
    "convert_official_state_dict",
    "from_official_state_dict",
    "load_official_checkpoint",
    "official_model_config",
]


#: The release keeps its loss's frozen Sobel kernels ([1, 1, 3, 3] each) in the model's state dict.
_SOBEL_KEYS = {"IntegrityPriorLoss.sobel_x.weight": sobel_kernels()[0:1],
               "IntegrityPriorLoss.sobel_y.weight": sobel_kernels()[1:2]}

_CRS = r"\.(?P<i>[01])\.(?P<p>weight|bias)$"  # official make_crs = Sequential(conv, RMSNorm, SiLU)

# (official regex, our template); groups are substituted with str.format(**match.groupdict()).
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^encoder\.(?P<rest>.+)$"), "encoder.backbone.{rest}"),
    (re.compile(r"^channel_mix(?P<k>[1-4])" + _CRS), "encoder.projector.stages.{k1}.{crs}.{p}"),
    (re.compile(r"^channel_mix" + _CRS), "encoder.projector.fuse.{crs}.{p}"),
    (re.compile(r"^Glob\.0" + _CRS), "encoder.projector.glob.{crs}.{p}"),
    (re.compile(r"^decoder\.FSE_mix\.(?P<s>\d)\.(?P<x>[IDP])_channelswich" + _CRS),
     "decoder.fse.{s}.{proj}.{crs}.{p}"),
    (re.compile(r"^decoder\.FSE_mix\.(?P<s>\d)\.(?P<c>IP|PI|DI|ID)\.Att\.(?P<rest>in_proj_weight|out_proj\.weight)$"),
     "decoder.fse.{s}.coa_{cl}.attn.{rest}"),
    (re.compile(r"^decoder\.FSE_mix\.(?P<s>\d)\.(?P<c>IP|PI|DI|ID)\.Norm(?P<n>[12])\.weight$"),
     "decoder.fse.{s}.coa_{cl}.norm{n}.weight"),
    (re.compile(r"^decoder\.FSE_mix\.(?P<s>\d)\.(?P<c>IP|PI|DI|ID)\.FFN\.(?P<w>w[123])\.weight$"),
     "decoder.fse.{s}.coa_{cl}.ffn.{w}.weight"),
    (re.compile(r"^decoder\.shallow\.0\.(?P<p>weight|bias)$"), "head.stem.{p}"),
    (re.compile(r"^decoder\.shallow\.1" + _CRS), "head.stem_crs.{crs}.{p}"),
    (re.compile(r"^decoder\.upsample(?P<u>[12])\.0" + _CRS), "head.fuse{u}.{crs}.{p}"),
    (re.compile(r"^decoder\.channel_mix\.(?P<k>[0-3])" + _CRS), "decoder.mix.{k}.{crs}.{p}"),
    (re.compile(r"^decoder\.Bside\.0\.(?P<p>weight|bias)$"), "head.out.{p}"),
    (re.compile(r"^decoder\.Bside\.(?P<k>[1-5])\.(?P<p>weight|bias)$"), "decoder.side.{km1}.{p}"),
    (re.compile(r"^depth_decoder\.Decoder\.(?P<k>[0-3])\.(?P<j>[01])" + _CRS),
     "depth_decoder.blocks.{k}.{j}.{crs}.{p}"),
    (re.compile(r"^depth_decoder\.shallow\.0\.(?P<p>weight|bias)$"), "depth_decoder.stem.{p}"),
    (re.compile(r"^depth_decoder\.upsample(?P<u>[12])" + _CRS), "depth_decoder.fuse{u}.{crs}.{p}"),
    (re.compile(r"^depth_decoder\.Bside\.0\.(?P<p>weight|bias)$"), "depth_decoder.out.{p}"),
    (re.compile(r"^depth_decoder\.Bside\.(?P<k>[1-4])\.(?P<p>weight|bias)$"), "depth_decoder.side.{km1}.{p}"),
]
_PROJ = {"I": "img_proj", "D": "depth_proj", "P": "patch_proj"}


def _rename(key: str) -> str | None:
    """Our name for an official parameter key, or None if no rule matches."""
    for pat, tmpl in _RULES:
        m = pat.match(key)
        if m is None:
            continue
        g = {k: v for k, v in m.groupdict().items() if v is not None}
        if "i" in g:
            g["crs"] = "conv" if g["i"] == "0" else "norm"
        if "k" in g:
            g["k1"] = str(int(g["k"]) - 1)
            g["km1"] = str(int(g["k"]) - 1)
        if "x" in g:
            g["proj"] = _PROJ[g["x"]]
        if "c" in g:
            g["cl"] = g["c"].lower()
        return tmpl.format(**g)
    return None


def convert_official_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official ``PDFNet_process`` state dict → this package's names.

    Swin ``relative_position_index`` buffers are checked against the standard index and dropped;
    the loss's Sobel kernels are checked against the constants and dropped.

    Raises:
        CheckpointError: an unknown key, a wrong Sobel constant or a wrong relative-position index.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key in _SOBEL_KEYS:
            ref = _SOBEL_KEYS[key]
            if tuple(value.shape) != tuple(ref.shape) or not torch.equal(value.detach().float().cpu(), ref):
                raise CheckpointError(f"{key} does not hold the Sobel constants the loss expects")
            continue
        if key.endswith("attn.relative_position_index"):
            w = round(value.shape[0] ** 0.5)
            if value.ndim != 2 or not torch.equal(value.cpu().long(), relative_position_index(w)):
                raise CheckpointError(f"{key} is not the standard Swin relative-position index")
            continue
        new = _rename(key)
        if new is None:
            raise CheckpointError(f"unexpected key in official checkpoint: {key!r}")
        out[new] = value
    return out


def load_strict(
    model: nn.Module, sd: Mapping[str, torch.Tensor], *, source: str = "checkpoint", assign: bool = False
) -> None:
    """Copy ``sd`` into ``model``: the key sets must be identical and every shape must agree.

    Raises:
        CheckpointError: naming the first missing / extra / mis-shaped key (and how many there are).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    extra = [k for k in sd if k not in own]
    if missing:
        raise CheckpointError(f"{source}: missing key {missing[0]!r} ({len(missing)} missing in total)")
    if extra:
        raise CheckpointError(f"{source}: unexpected key {extra[0]!r} ({len(extra)} unexpected in total)")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(
                f"{source}: shape mismatch for {k!r}: checkpoint {tuple(v.shape)}, "
                f"model {tuple(own[k].shape)}"
            )
    model.load_state_dict(sd, strict=True, assign=assign)


def official_model_config(**overrides) -> ModelConfig:
    """The released configuration (paper defaults, March-2025 variants, no pretrained download)."""
    cfg = ModelConfig(backbone="swin_b", backbone_weights=None)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def from_official_state_dict(
    sd: Mapping[str, torch.Tensor], *, cfg: ModelConfig | None = None, eval_mode: bool = True
) -> PDFNet:
    """Build the paper-config PDFNet and load an official-layout state dict strictly.

    The depth decoder is built when ``sd`` has ``depth_decoder.*`` keys (the release file does);
    otherwise an inference-only model is returned.

    Args:
        sd: official ``PDFNet_process`` state dict (e.g. ``PDFNet_Best.pth``).
        cfg: model config (default: :func:`official_model_config`); must describe the release network.
        eval_mode: return the model in eval mode.

    Raises:
        CheckpointError: any missing/extra/mis-shaped key or wrong constant.
    """
    cfg = cfg or official_model_config()
    has_depth = any(k.startswith("depth_decoder.") for k in sd)
    converted = convert_official_state_dict(sd)
    # every parameter is overwritten: build on the meta device (no random init), then assign
    with torch.device("meta"):
        model = build_model(replace(cfg, backbone_weights=None), with_depth_decoder=has_depth)
    load_strict(model, {k: v.detach().to("cpu", torch.float32).clone() for k, v in converted.items()},
                source="official state dict", assign=True)
    _rebuild_buffers(model)
    return model.eval() if eval_mode else model


def _rebuild_buffers(model: nn.Module) -> None:
    """Recreate non-persistent buffers (Swin relative-position indices) after a meta-device build."""
    for m in model.modules():
        if hasattr(m, "reset_buffers"):
            m.reset_buffers()
    leftovers = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftovers:
        raise RuntimeError(f"tensors left on the meta device: {leftovers[:5]}")


def load_official_checkpoint(path: str | os.PathLike, *, cfg: ModelConfig | None = None) -> PDFNet:
    """Load the released ``PDFNet_Best.pth`` (a plain official-layout state dict) strictly, eval mode."""
    return from_official_state_dict(read_state_dict(path), cfg=cfg)
