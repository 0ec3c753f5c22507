"""DIS5K discovery: find splits, pair images with GT masks by stem, and locate pseudo-depth maps.

Accepted layouts (``<root>`` may also be the folder *containing* ``DIS5K/``, as the release unzips)::

    <root>/DIS-TR/im/*.jpg      <root>/DIS-TR/gt/*.png       (official DIS5K release)
    <root>/DIS-TR/images/*.jpg  <root>/DIS-TR/masks/*.png    (renamed, as the PDFNet release expects)
    <root>/DIS-TR/depth_<name>/<stem>.png | .jpg             (pseudo-depth, one folder per depth model)

``<name>`` is ``small``/``base``/``large`` (Depth Anything V2 S/B/L at input 518), ``large_1024`` (DAv2-L at
input 1024, the integrity-loss target) or any custom name written by ``pdfnet depth --name``. Depth maps may
be 8-bit PNG, 16-bit PNG or the official notebook's 8-bit grayscale ``.jpg``; when a stem has both a
``.png`` and a ``.jpg``, the ``.png`` wins (it is lossless).

Files are paired by stem (file name without extension). Every problem is reported as one
:class:`~pdfnet.errors.UserError` that names the split, how many files are affected and the first few of
them, e.g. ``DIS-TR: 3 images have no GT mask (first: a.jpg, b.jpg, c.jpg)``. A missing depth folder names
the ``pdfnet depth`` command that creates it. Nothing here decodes images; see :mod:`pdfnet.data.dataset`
for how unreadable files, size mismatches and non-binary masks are handled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pdfnet.errors import UserError
from pdfnet.utils.io import IMAGE_EXTS, list_images

#: The DIS5K splits in release order.
DIS5K_SPLITS: tuple[str, ...] = ("DIS-TR", "DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")
#: Depth-model names the release uses (custom names are accepted too).
STANDARD_DEPTHS: tuple[str, ...] = ("small", "base", "large", "large_1024")
#: (image folder, mask folder) per layout.
LAYOUTS: dict[str, tuple[str, str]] = {"official": ("im", "gt"), "renamed": ("images", "masks")}
DEPTH_EXTS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_SHOW = 5  # how many file names an error message lists


@dataclass(frozen=True)
class Sample:
    """One discovered sample: the image, its GT mask (None when GT is not required and absent) and the
    depth maps found for it, keyed by depth name."""

    stem: str
    image: Path
    gt: Path | None
    depths: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitIndex:
    """Everything discovered in one split folder."""

    name: str
    dir: Path
    layout: str
    """``official`` (im/gt) or ``renamed`` (images/masks)."""
    samples: tuple[Sample, ...]
    depth_names: tuple[str, ...]
    """The depth names that were requested and found complete."""

    def __len__(self) -> int:
        return len(self.samples)


def _first(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOW])
    return shown + (", ..." if len(names) > _SHOW else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def depth_command_hint(root: str | os.PathLike, split: str, name: str) -> str:
    """The ``pdfnet depth`` command line that writes ``<root>/<split>/depth_<name>/``."""
    if name in STANDARD_DEPTHS:
        return f"pdfnet depth --data-root {root} --splits {split} --model {name}"
    return f"pdfnet depth --data-root {root} --splits {split} --model <model id or dir> --name {name}"


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
    found = sorted(p.name for base in (root, root / "DIS5K") if base.is_dir() for p in base.iterdir()
                   if p.is_dir() and _layout_of(p, strict=False) is not None)
    hint = f"splits found: {', '.join(found)}" if found else "no DIS5K-layout split folders found there"
    raise UserError(f"split {split!r} not found under {root} ({hint})")


def _layout_of(split_dir: Path, strict: bool = True) -> str | None:
    present = [name for name, (im, gt) in LAYOUTS.items() if (split_dir / im).is_dir()]
    if len(present) > 1 and strict:
        raise UserError(
            f"{split_dir.name}: both im/ and images/ exist in {split_dir}; keep one layout "
            "(official im/+gt/ or renamed images/+masks/)"
        )
    return present[0] if present else None


def available_depths(split_dir: str | os.PathLike) -> tuple[str, ...]:
    """Depth names with a ``depth_<name>`` folder in ``split_dir`` (sorted)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        return ()
    return tuple(sorted(p.name[len("depth_"):] for p in split_dir.iterdir()
                        if p.is_dir() and p.name.startswith("depth_") and len(p.name) > len("depth_")))


def _by_stem(files: Iterable[Path], what: str, split: str, prefer: Sequence[str] = ()) -> dict[str, Path]:
    """Map stem → file; two files with one stem is an error unless ``prefer`` ranks their extensions."""
    out: dict[str, Path] = {}
    dups: list[str] = []
    rank = {e: i for i, e in enumerate(prefer)}
    for f in files:
        prev = out.get(f.stem)
        if prev is None:
            out[f.stem] = f
            continue
        a, b = rank.get(prev.suffix.lower()), rank.get(f.suffix.lower())
        if a is not None and b is not None and a != b:
            out[f.stem] = prev if a < b else f
        else:
            dups.append(f"{prev.name}/{f.name}")
    if dups:
        raise UserError(f"{split}: {_plural(len(dups), what)} share a stem with another file "
                        f"(first: {_first(dups)}); keep one file per stem")
    return out


def discover_split(
    root: str | os.PathLike,
    split: str,
    depth_names: Sequence[str] = (),
    *,
    require_gt: bool = True,
    optional_depths: Sequence[str] = (),
) -> SplitIndex:
    """Index one split: pair images and GT masks by stem and find each requested depth map.

    Args:
        root: DIS5K root (holding ``DIS-TR`` …) or the folder holding ``DIS5K/``.
        split: split folder name, e.g. ``DIS-TR``.
        depth_names: depth folders that must exist and be complete (``depth_<name>``).
        require_gt: if true, every image needs a mask and every mask an image.
        optional_depths: depth folders to use when present (complete) and skip when absent.

    Returns:
        The split index; samples are sorted by stem.

    Raises:
        UserError: missing folders, unpaired files, duplicate stems or missing depth maps.
    """
    split_dir = resolve_split_dir(root, split)
    layout = _layout_of(split_dir)
    if layout is None:
        raise UserError(
            f"{split}: no image folder in {split_dir} (expected im/ + gt/ as in the DIS5K release, "
            "or images/ + masks/)"
        )
    im_name, gt_name = LAYOUTS[layout]
    images = _by_stem(list_images(split_dir / im_name), "image", split)
    if not images:
        raise UserError(f"{split}: no images in {split_dir / im_name}")
    gts: dict[str, Path] = {}
    gt_dir = split_dir / gt_name
    if gt_dir.is_dir():
        gts = _by_stem(list_images(gt_dir), "GT mask", split)
    elif require_gt:
        raise UserError(f"{split}: GT folder {gt_dir} not found ({im_name}/ needs a sibling {gt_name}/)")
    if require_gt:
        no_gt = sorted(images[s].name for s in images.keys() - gts.keys())
        no_im = sorted(gts[s].name for s in gts.keys() - images.keys())
        problems = []
        if no_gt:
            problems.append(f"{_plural(len(no_gt), 'image')} have no GT mask in {gt_name}/ "
                            f"(first: {_first(no_gt)})")
        if no_im:
            problems.append(f"{_plural(len(no_im), 'GT mask')} have no image in {im_name}/ "
                            f"(first: {_first(no_im)})")
        if problems:
            raise UserError(f"{split}: " + "; ".join(problems))

    stems = sorted(images)
    wanted = list(dict.fromkeys(depth_names))
    found_depths = set(available_depths(split_dir))
    for name in optional_depths:
        if name in found_depths and name not in wanted:
            wanted.append(name)
    depth_maps: dict[str, dict[str, Path]] = {}
    for name in wanted:
        ddir = split_dir / f"depth_{name}"
        if not ddir.is_dir():
            have = ", ".join(sorted(found_depths)) or "none"
            raise UserError(
                f"{split}: depth folder depth_{name}/ not found in {split_dir} (depth folders present: "
                f"{have}); create it with `{depth_command_hint(_root_of(split_dir), split, name)}`"
            )
        files = _by_stem(list_images(ddir, DEPTH_EXTS), f"depth_{name} map", split, prefer=DEPTH_EXTS)
        missing = [images[s].name for s in stems if s not in files]
        if missing:
            if name in optional_depths and name not in depth_names:
                continue
            raise UserError(
                f"{split}: {_plural(len(missing), 'image')} have no depth map in depth_{name}/ "
                f"(first: {_first(missing)}); (re)run "
                f"`{depth_command_hint(_root_of(split_dir), split, name)}`"
            )
        depth_maps[name] = files
    samples = tuple(
        Sample(stem=s, image=images[s], gt=gts.get(s), depths={n: m[s] for n, m in depth_maps.items()})
        for s in stems
    )
    return SplitIndex(name=split, dir=split_dir, layout=layout, samples=samples,
                      depth_names=tuple(depth_maps))


def _root_of(split_dir: Path) -> Path:
    return split_dir.parent


def discover(
    root: str | os.PathLike,
    splits: Sequence[str] = DIS5K_SPLITS,
    depth_names: Sequence[str] = (),
    *,
    require_gt: bool = True,
) -> dict[str, SplitIndex]:
    """:func:`discover_split` for several splits; returns ``{split: index}`` in the given order."""
    return {s: discover_split(root, s, depth_names, require_gt=require_gt) for s in splits}


__all__ = [
    "DEPTH_EXTS",
    "DIS5K_SPLITS",
    "IMAGE_EXTS",
    "LAYOUTS",
    "STANDARD_DEPTHS",
    "Sample",
    "SplitIndex",
    "available_depths",
    "depth_command_hint",
    "discover",
    "discover_split",
    "resolve_split_dir",
]
