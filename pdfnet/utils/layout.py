"""The DIS5K folder layout, one owner: where a data tree keeps its splits, images, masks and depth maps.

Both the dataset (:mod:`pdfnet.data.dis5k`) and the depth precompute (:mod:`pdfnet.depth.precompute`)
find splits and image folders here; it sits in the bottom layer because ``depth`` may not import
``data``. Accepted trees::

    <root>/<split>/im/ + gt/             (official DIS5K release)
    <root>/<split>/images/ + masks/      (renamed, as the PDFNet release expects)
    <root>/<split>/depth_<name>/         (pseudo-depth maps, one folder per depth model)

``<root>`` may also be the folder that *contains* ``DIS5K/`` (as the archive unzips). A split folder with
both ``im/`` and ``images/`` is ambiguous and refused. Nothing here reads an image.
"""

from __future__ import annotations

import os
from pathlib import Path

from pdfnet.errors import UserError

__all__ = [
    "DEPTH_DIR_PREFIX", "LAYOUTS", "available_depths", "data_root", "depth_dir_name", "find_splits",
    "image_dir", "resolve_split_dir", "split_layout",
]

#: (image folder, mask folder) per layout name.
LAYOUTS: dict[str, tuple[str, str]] = {"official": ("im", "gt"), "renamed": ("images", "masks")}
#: A split's depth maps of depth model ``<name>`` live in ``depth_<name>/``.
DEPTH_DIR_PREFIX = "depth_"


def split_layout(split_dir: str | os.PathLike, strict: bool = True) -> str | None:
    """The layout name (``official``/``renamed``) of a split folder, or None when it has no image folder.

    Raises:
        UserError: with ``strict``, when both ``im/`` and ``images/`` exist.
    """
    split_dir = Path(split_dir)
    present = [name for name, (im, _) in LAYOUTS.items() if (split_dir / im).is_dir()]
    if len(present) > 1 and strict:
        raise UserError(
            f"{split_dir.name}: both im/ and images/ exist in {split_dir}; keep one layout "
            "(official im/+gt/ or renamed images/+masks/)"
        )
    return present[0] if present else None


def image_dir(split_dir: str | os.PathLike) -> Path | None:
    """``<split>/im`` or ``<split>/images``, or None when there is neither (UserError when both)."""
    layout = split_layout(split_dir)
    return None if layout is None else Path(split_dir) / LAYOUTS[layout][0]


def _splits_in(base: Path) -> list[str]:
    return sorted(p.name for p in base.iterdir() if p.is_dir() and split_layout(p, strict=False) is not None)


def data_root(root: str | os.PathLike) -> Path:
    """The folder that holds the splits: ``root``, or ``root/DIS5K`` when only that one holds any.

    Raises:
        UserError: if ``root`` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"data root not found: {root}")
    nested = root / "DIS5K"
    if nested.is_dir() and not _splits_in(root) and _splits_in(nested):
        return nested
    return root


def find_splits(root: str | os.PathLike) -> list[str]:
    """Sorted names of the split folders (those holding ``im/`` or ``images/``) under :func:`data_root`.

    Raises:
        UserError: if ``root`` does not exist.
    """
    return _splits_in(data_root(root))


def resolve_split_dir(root: str | os.PathLike, split: str) -> Path:
    """``<root>/<split>``, or ``<root>/DIS5K/<split>`` when the root is the folder holding ``DIS5K/``.

    Raises:
        UserError: if the root or the split folder does not exist (the message lists the splits found).
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"data root not found: {root} (download DIS5K or run `pdfnet synth --out {root}`)")
    for cand in (root / split, root / "DIS5K" / split):
        if cand.is_dir():
            return cand
    found = find_splits(root)
    hint = f"splits found: {', '.join(found)}" if found else "no DIS5K-layout split folders found there"
    raise UserError(f"split {split!r} not found under {root} ({hint})")


def depth_dir_name(name: str) -> str:
    """``depth_<name>``: the folder of depth model ``name``'s maps inside a split."""
    return DEPTH_DIR_PREFIX + name


def available_depths(split_dir: str | os.PathLike) -> tuple[str, ...]:
    """Depth names with a ``depth_<name>`` folder in ``split_dir`` (sorted; empty if it does not exist)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        return ()
    n = len(DEPTH_DIR_PREFIX)
    return tuple(sorted(p.name[n:] for p in split_dir.iterdir()
                        if p.is_dir() and p.name.startswith(DEPTH_DIR_PREFIX) and len(p.name) > n))
