"""Depth-model aliases, depth-folder names and model-source resolution.

The aliases are the four pseudo-depths PDFNet reads (docs/architecture.md): DAv2-S/B/L at the official input
size 518 (the network's depth *input*, drawn at random per training sample) and DAv2-L at input size 1024
(``large_1024``, the integrity-loss *target* D*).

Assumption for ``large_1024`` (the release does not show how it was made; docs/differences.md): the
same ``infer_image`` procedure as the other three, with ``input_size=1024`` instead of 518, i.e. the
short side is resized to 1036 (the smallest multiple of 14 that is >= 1024; see
:func:`pdfnet.depth.transforms.target_size`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pdfnet.errors import UserError
from pdfnet.utils.layout import depth_dir_name


@dataclass(frozen=True)
class DepthModelSpec:
    """One named pseudo-depth: which weights, at which input size, into which folder."""

    name: str
    """Alias and folder suffix (``depth_<name>``)."""
    hub_id: str
    """transformers ``from_pretrained`` id of the weights."""
    input_size: int
    """Lower bound of the resized short side (DAv2 ``infer_image(input_size=...)``)."""


#: alias → spec. ``small/base/large`` are the DAv2 transformers ports; ``large_1024`` reuses the
#: Large weights at input size 1024 (see the module docstring for the assumption).
DEPTH_MODELS: dict[str, DepthModelSpec] = {
    "small": DepthModelSpec("small", "depth-anything/Depth-Anything-V2-Small-hf", 518),
    "base": DepthModelSpec("base", "depth-anything/Depth-Anything-V2-Base-hf", 518),
    "large": DepthModelSpec("large", "depth-anything/Depth-Anything-V2-Large-hf", 518),
    "large_1024": DepthModelSpec("large_1024", "depth-anything/Depth-Anything-V2-Large-hf", 1024),
}

#: ``--model all`` expands to these, in this order.
ALL_ALIASES: tuple[str, ...] = ("small", "base", "large", "large_1024")
#: The alias that is the integrity-loss target (made only for training splits by default).
TARGET_ALIAS = "large_1024"

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

#: Environment variable naming a folder that holds local copies of the hub models, one sub-folder
#: per model named like the hub repo (e.g. ``$PDFNET_DEPTH_MODELS_DIR/Depth-Anything-V2-Small-hf``).
MODELS_DIR_ENV = "PDFNET_DEPTH_MODELS_DIR"


def validate_name(name: str) -> str:
    """Check a custom depth name (``[A-Za-z0-9_.-]+``, not ``.``/``..``) and return it."""
    if not _NAME_RE.match(name or "") or name in (".", ".."):
        raise UserError(f"invalid depth name {name!r}: use letters, digits, '_', '.', '-' only")
    return name


def depth_folder_name(name: str) -> str:
    """Folder of a pseudo-depth inside a split: ``depth_<name>`` (e.g. ``depth_large_1024``)."""
    return depth_dir_name(validate_name(name))


def parse_model_paths(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parse ``ALIAS=DIR`` items (``--model-path small=/models/dav2-s``) into a mapping.

    ``large=DIR`` also serves ``large_1024`` (same weights) unless ``large_1024=...`` is given.
    """
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--model-path: expected ALIAS=DIR, got {item!r}")
        alias, path = (s.strip() for s in item.split("=", 1))
        if alias not in DEPTH_MODELS:
            raise UserError(f"--model-path: unknown alias {alias!r} (known: {', '.join(DEPTH_MODELS)})")
        if not path:
            raise UserError(f"--model-path: empty path for {alias!r}")
        out[alias] = path
    if "large" in out and "large_1024" not in out:
        out["large_1024"] = out["large"]
    return out


def resolve_source(
    alias_or_id: str, model_paths: dict[str, str] | None = None, models_dir: str | None = None
) -> str:
    """The ``from_pretrained`` argument for an alias, hub id or local directory.

    Order for an alias: an explicit ``model_paths[alias]``, then ``models_dir`` (or the
    ``PDFNET_DEPTH_MODELS_DIR`` environment variable) ``/<hub repo name>`` if that folder exists,
    then the hub id (which transformers resolves from its cache, or downloads when online).
    Anything that is not an alias is returned unchanged (a hub id or a local directory).
    """
    spec = DEPTH_MODELS.get(alias_or_id)
    if spec is None:
        return alias_or_id
    if model_paths and alias_or_id in model_paths:
        path = Path(model_paths[alias_or_id]).expanduser()
        if not path.is_dir():
            raise UserError(f"model path for {alias_or_id!r} is not a directory: {path}")
        return str(path)
    models_dir = models_dir or os.environ.get(MODELS_DIR_ENV)
    if models_dir:
        cand = Path(models_dir).expanduser() / spec.hub_id.split("/")[-1]
        if cand.is_dir():
            return str(cand)
    return spec.hub_id
