"""DIS5K discovery: find splits, pair images with GT masks by stem, and locate pseudo-depth maps.

Accepted layouts (``<root>`` may also be the folder *containing* ``DIS5K/``, as the release unzips)::

    <root>/DIS-TR/im/*.jpg      <root>/DIS-TR/gt/*.png       (official DIS5K release)
    <root>/DIS-TR/images/*.jpg  <root>/DIS-TR/masks/*.png    (renamed, as the PDFNet release expects)
    <root>/DIS-TR/depth_<name>/<stem>.png | .jpg             (pseudo-depth, one folder per depth model)
    <root>/train/images/*.png   (no mask folder)             (generic: masks = the RGBA images' alpha)
    <root>/train.csv            image,mask[,depth] per row   (list file: data that lives elsewhere)

Any split name works (``DIS-TR``, ``train``, ``my split``); images and masks may be png, jpg, bmp, tif or
webp, with spaces or non-ASCII characters in their names. A split given as a ``.csv`` (comma-separated,
quoted as the ``csv`` module does), ``.tsv`` or ``.txt`` (tab-separated) file lists one sample per row:
``image, mask[, depth]``; relative paths are relative to the list file, ``#`` lines are comments, and an
optional header row names the columns (``image``, ``mask``, ``depth`` or ``depth_<name>``; a plain
``depth`` column serves every depth name that has no column of its own).

``<name>`` is ``small``/``base``/``large`` (Depth Anything V2 S/B/L at input 518), ``large_1024`` (DAv2-L at
input 1024, the integrity-loss target) or any custom name written by ``pdfnet depth --name``. Depth maps may
be 8-bit PNG, 16-bit PNG or the official notebook's 8-bit grayscale ``.jpg``; when a stem has both a
``.png`` and a ``.jpg``, the ``.png`` wins (it is lossless).

Files are paired by stem (file name without extension). :func:`scan_split` collects every pairing
problem as an :class:`Issue`; :func:`discover_split` raises them as one
:class:`~pdfnet.errors.UserError` that names the split, how many files are affected and the first few of
them, e.g. ``DIS-TR: 3 images have no GT mask (first: a.jpg, b.jpg, c.jpg)``. A missing depth folder names
the ``pdfnet depth`` command that creates it. The folder rules themselves (layouts, ``DIS5K/`` nesting,
``depth_<name>``) live in :mod:`pdfnet.utils.layout`, shared with the depth precompute. Nothing here
decodes images (the alpha layout reads one image header); :mod:`pdfnet.data.check` checks the files.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pdfnet.errors import UserError
from pdfnet.utils.io import IMAGE_EXTS, has_alpha, list_images
from pdfnet.utils.layout import (
    LAYOUTS,
    available_depths,
    depth_dir_name,
    resolve_split_dir,
    split_layout,
)

#: The DIS5K splits in release order.
DIS5K_SPLITS: tuple[str, ...] = ("DIS-TR", "DIS-VD", "DIS-TE1", "DIS-TE2", "DIS-TE3", "DIS-TE4")
#: Depth-model names the release uses (custom names are accepted too).
STANDARD_DEPTHS: tuple[str, ...] = ("small", "base", "large", "large_1024")
DEPTH_EXTS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Extensions that make a split name a list file (``.csv`` comma-separated, the others tab-separated).
LIST_EXTS: tuple[str, ...] = (".csv", ".tsv", ".txt")
GT_THRESHOLD = 128
"""GT pixels strictly above this 8-bit value are foreground."""
DEPTH_ASPECT_TOL = 0.02
"""A depth map whose aspect ratio differs from its image's by more than this is refused."""
_SHOW = 5  # how many file names an error message lists


def check_depth_aspect(depth_hw: tuple[int, ...], image_hw: tuple[int, ...], depth_name: str,
                       image_name: str) -> None:
    """Refuse a depth map whose aspect ratio differs from its image's by more than
    :data:`DEPTH_ASPECT_TOL` (a stale or mismatched map); another resolution of the same aspect is
    fine (it is resized). Training, evaluation and prediction all apply this rule.

    Raises:
        UserError: naming both files and their sizes.
    """
    if tuple(depth_hw[:2]) == tuple(image_hw[:2]):
        return
    ar_img, ar_d = image_hw[1] / image_hw[0], depth_hw[1] / depth_hw[0]
    if abs(ar_d / ar_img - 1.0) > DEPTH_ASPECT_TOL:
        raise UserError(
            f"{depth_name} is {depth_hw[0]}x{depth_hw[1]} but {image_name} is {image_hw[0]}x{image_hw[1]} "
            "(different aspect ratio: stale or mismatched depth?)"
        )


@dataclass(frozen=True)
class Sample:
    """One discovered sample: the image, its GT mask (None when GT is not required and absent) and the
    depth maps found for it, keyed by depth name. With ``gt_alpha`` the mask is the alpha channel of
    ``gt`` (which is then the RGBA image itself)."""

    stem: str
    image: Path
    gt: Path | None
    depths: dict[str, Path] = field(default_factory=dict)
    gt_alpha: bool = False


@dataclass(frozen=True)
class SplitIndex:
    """Everything discovered in one split folder (or list file)."""

    name: str
    dir: Path
    layout: str
    """``official`` (im/gt), ``renamed`` (images/masks), ``alpha`` (images/ or im/ with the masks in the
    images' alpha channel) or ``list`` (a list file)."""
    samples: tuple[Sample, ...]
    depth_names: tuple[str, ...]
    """The depth names that were requested and found complete."""

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True)
class Issue:
    """One problem found in a split, as one line without the split prefix.

    ``kind`` is a stable keyword (``orphan-image``, ``orphan-mask``, ``stem-clash``, ``missing-file``,
    ``depth-missing``, ``depth-incomplete``, and from :mod:`pdfnet.data.check` ``unreadable``,
    ``size-mismatch``, ``depth-size``, ``mask-levels``, ``mask-soft``, ``mask-channels``, ``mask-empty``);
    ``files`` names every affected file; a ``warning`` does not make the split untrainable.
    """

    kind: str
    message: str
    files: tuple[str, ...] = ()
    warning: bool = False


@dataclass(frozen=True)
class SplitScan:
    """:func:`scan_split`'s result: the paired samples, the problems, and what was counted."""

    index: SplitIndex
    issues: tuple[Issue, ...]
    n_images: int
    n_masks: int
    depth_counts: dict[str, int]
    """Depth folders (or list-file depth columns) present → how many of the indexed samples have a map."""

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if not i.warning)


def _first(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOW])
    return shown + (", ..." if len(names) > _SHOW else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def files_issue(kind: str, files: Sequence[str], what: str, *, warning: bool = False) -> Issue:
    """An issue about ``files``: ``"<n> <what> (first: a, b, ...)"`` (``what`` already pluralised)."""
    return Issue(kind, f"{what} (first: {_first(files)})", tuple(files), warning)


def depth_command_hint(root: str | os.PathLike, split: str, name: str) -> str:
    """The ``pdfnet depth`` command line that writes ``<root>/<split>/depth_<name>/``."""
    if name in STANDARD_DEPTHS:
        return f"pdfnet depth --data-root {root} --splits {split} --model {name}"
    return f"pdfnet depth --data-root {root} --splits {split} --model <model id or dir> --name {name}"


def is_list_split(split: str) -> bool:
    """Whether ``split`` names a list file rather than a split folder."""
    return Path(split).suffix.lower() in LIST_EXTS


def resolve_list_file(root: str | os.PathLike, split: str) -> Path:
    """The list file a split names: absolute, or relative to the data root.

    Raises:
        UserError: if it does not exist.
    """
    p = Path(split).expanduser()
    if not p.is_absolute():
        p = Path(root) / p
    if not p.is_file():
        raise UserError(f"list file not found: {p}")
    return p


def split_depths(root: str | os.PathLike, split: str) -> tuple[str, ...]:
    """Depth names available for a split: its ``depth_<name>`` folders, or a list file's depth columns
    (``depth`` alone means any name)."""
    if is_list_split(split):
        return tuple(sorted(_read_list(resolve_list_file(root, split), split)[1]))
    return available_depths(resolve_split_dir(root, split))


def _by_stem(files: Iterable[Path], prefer: Sequence[str] = ()) -> tuple[dict[str, Path], list[str]]:
    """Map stem → file and the clashes (``"a.jpg/a.png"``): two files with one stem clash unless
    ``prefer`` ranks their extensions (then the better one is kept)."""
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
    return out, dups


def _clash_issue(dups: list[str], what: str) -> Issue:
    return Issue("stem-clash", f"{_plural(len(dups), what)} share a stem with another file "
                               f"(first: {_first(dups)}); keep one file per stem", tuple(dups))


def _pairing_issues(images: dict[str, Path], gts: dict[str, Path], im_name: str, gt_name: str,
                    ) -> list[Issue]:
    """Images without a mask and masks without an image (``im_name``/``gt_name``: their folders)."""
    no_gt = sorted(images[s].name for s in images.keys() - gts.keys())
    no_im = sorted(gts[s].name for s in gts.keys() - images.keys())
    out = []
    if no_gt:
        out.append(files_issue("orphan-image", no_gt, f"{_plural(len(no_gt), 'image')} have no GT mask in "
                                                      f"{gt_name}/"))
    if no_im:
        out.append(files_issue("orphan-mask", no_im, f"{_plural(len(no_im), 'GT mask')} have no image in "
                                                     f"{im_name}/"))
    return out


def scan_split(
    root: str | os.PathLike,
    split: str,
    depth_names: Sequence[str] = (),
    *,
    require_gt: bool = True,
    optional_depths: Sequence[str] = (),
) -> SplitScan:
    """Index one split and collect its pairing problems instead of raising them.

    Arguments as :func:`discover_split`. The index holds the samples that are complete (an image with
    its mask when ``require_gt`` and every requested depth map that was found).

    Raises:
        UserError: only for what leaves nothing to index: a missing root, split folder, image folder or
            list file, both layouts in one folder, no images at all.
    """
    if is_list_split(split):
        return _scan_list(resolve_list_file(root, split), split, depth_names, require_gt, optional_depths)
    split_dir = resolve_split_dir(root, split)
    layout = split_layout(split_dir)
    if layout is None:
        raise UserError(
            f"{split}: no image folder in {split_dir} (expected im/ + gt/ as in the DIS5K release, "
            "or images/ + masks/)"
        )
    im_name, gt_name = LAYOUTS[layout]
    issues: list[Issue] = []
    images, dups = _by_stem(list_images(split_dir / im_name))
    if dups:
        issues.append(_clash_issue(dups, "image"))
    if not images:
        raise UserError(f"{split}: no images in {split_dir / im_name}")
    gts: dict[str, Path] = {}
    gt_dir = split_dir / gt_name
    n_masks = 0
    if gt_dir.is_dir():
        gt_files = list_images(gt_dir)
        n_masks = len(gt_files)
        gts, dups = _by_stem(gt_files)
        if dups:
            issues.append(_clash_issue(dups, "GT mask"))
    elif require_gt:
        if not any(has_alpha(images[s]) for s in sorted(images)):
            raise UserError(
                f"{split}: GT folder {gt_dir} not found ({im_name}/ needs a sibling {gt_name}/, or RGBA "
                "images whose alpha channel is the mask; these have no alpha channel)"
            )
        layout = "alpha"
        gts = dict(images)
        n_masks = len(images)
    if require_gt:
        issues += _pairing_issues(images, gts, im_name, gt_name)
        stems = sorted(images.keys() & gts.keys())
    else:
        stems = sorted(images)

    depth_maps, depth_counts, depth_issues = _scan_depths(split_dir, split, images, stems, depth_names,
                                                          optional_depths)
    issues += depth_issues
    samples = tuple(
        Sample(stem=s, image=images[s], gt=gts.get(s), gt_alpha=layout == "alpha",
               depths={n: m[s] for n, m in depth_maps.items() if s in m})
        for s in stems
    )
    index = SplitIndex(name=split, dir=split_dir, layout=layout, samples=samples,
                       depth_names=tuple(depth_maps))
    return SplitScan(index, tuple(issues), len(images), n_masks, depth_counts)


def _scan_depths(split_dir: Path, split: str, images: dict[str, Path], stems: list[str],
                 depth_names: Sequence[str], optional_depths: Sequence[str],
                 ) -> tuple[dict[str, dict[str, Path]], dict[str, int], list[Issue]]:
    """Depth maps of a split folder: the complete requested/optional folders (name → stem → file), the
    count of indexed stems covered per folder present, and the problems with the required ones."""
    wanted = list(dict.fromkeys(depth_names))
    found_depths = available_depths(split_dir)
    wanted += [n for n in optional_depths if n in found_depths and n not in wanted]
    issues: list[Issue] = []
    counts: dict[str, int] = {}
    depth_files: dict[str, dict[str, Path]] = {}
    for name in found_depths:
        files, dups = _by_stem(list_images(split_dir / depth_dir_name(name), DEPTH_EXTS), prefer=DEPTH_EXTS)
        if dups and name in wanted:
            issues.append(_clash_issue(dups, f"depth_{name} map"))
        depth_files[name] = files
        counts[name] = sum(s in files for s in stems)
    depth_maps: dict[str, dict[str, Path]] = {}
    for name in wanted:
        hint = depth_command_hint(split_dir.parent, split, name)
        files = depth_files.get(name)
        missing = [images[s].name for s in stems if s not in files] if files is not None else []
        if files is not None and not missing:
            depth_maps[name] = files
        elif name not in depth_names:
            continue  # optional and absent or incomplete: not used
        elif files is None:
            have = ", ".join(found_depths) or "none"
            issues.append(Issue(
                "depth-missing", f"depth folder depth_{name}/ not found in {split_dir} (depth folders "
                                 f"present: {have}); create it with `{hint}`"))
        else:
            issues.append(Issue(
                "depth-incomplete", f"{_plural(len(missing), 'image')} have no depth map in depth_{name}/ "
                                    f"(first: {_first(missing)}); (re)run `{hint}`", tuple(missing)))
    return depth_maps, counts, issues


def _read_list(path: Path, split: str) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """Rows of a list file as ``(line number, {column: value})`` and its depth columns
    (``depth`` or ``depth_<name>`` → the name, ``depth`` → ``"*"``)."""
    delim = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{split}: list file {path} is not UTF-8 text") from None
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines())
             if ln.strip() and not ln.lstrip().startswith("#")]
    rows = list(csv.reader([ln for _, ln in lines], delimiter=delim))
    cols = ["image", "mask", "depth"]
    if rows and rows[0] and rows[0][0].strip().lower() in ("image", "img", "im"):
        cols = [c.strip().lower() for c in rows[0]]
        rows, lines = rows[1:], lines[1:]
        if len(cols) < 1 or any(c not in ("image", "img", "im", "mask", "gt")
                                and not c.startswith("depth") for c in cols):
            raise UserError(f"{split}: list file {path}: header columns must be image, mask, depth or "
                            f"depth_<name>, got {', '.join(cols)}")
        cols = ["image" if c in ("img", "im") else "mask" if c == "gt" else c for c in cols]
    out = []
    for (lineno, _), row in zip(lines, rows):
        vals = [v.strip() for v in row]
        if len(vals) > len(cols):
            raise UserError(f"{split}: list file {path} line {lineno}: {len(vals)} fields, expected at most "
                            f"{len(cols)} ({', '.join(cols)}); separate fields with "
                            f"{'commas' if delim == ',' else 'tabs'}")
        out.append((lineno, {c: v for c, v in zip(cols, vals) if v}))
    depths = ["*" if c == "depth" else c[len("depth_"):] for c in cols if c.startswith("depth")]
    return out, depths


def _scan_list(path: Path, split: str, depth_names: Sequence[str], require_gt: bool,
               optional_depths: Sequence[str]) -> SplitScan:
    rows, depth_cols = _read_list(path, split)
    if not rows:
        raise UserError(f"{split}: list file {path} lists no images")

    def resolve(v: str) -> Path:
        p = Path(v).expanduser()
        return p if p.is_absolute() else path.parent / p

    def column(row: dict[str, str], name: str) -> str | None:
        return row.get(f"depth_{name}", row.get("depth"))

    wanted = list(dict.fromkeys(
        [*depth_names, *(n for n in optional_depths if n in depth_cols or "*" in depth_cols)]))
    gone: list[str] = []
    no_gt: list[str] = []
    no_depth: dict[str, list[str]] = {n: [] for n in wanted}
    counts = {("depth" if c == "*" else c): 0 for c in depth_cols}
    by_stem: dict[str, Sample] = {}
    dups: list[str] = []
    n_masks = 0
    for lineno, row in rows:
        if "image" not in row:
            raise UserError(f"{split}: list file {path} line {lineno} has no image")
        image = resolve(row["image"])
        gt = resolve(row["mask"]) if "mask" in row else None
        n_masks += gt is not None
        for c in counts:
            counts[c] += (f"depth_{c}" if c != "depth" else "depth") in row
        depths = {n: resolve(v) for n in wanted if (v := column(row, n)) is not None}
        for n in wanted:
            if n not in depths:
                no_depth[n].append(image.name)
        missing = [str(p) for p in (image, gt, *depths.values()) if p is not None and not p.is_file()]
        if missing:
            gone += missing
        elif require_gt and gt is None:
            no_gt.append(image.name)
        elif image.stem in by_stem:
            dups.append(f"{by_stem[image.stem].image}/{image}")
        else:
            by_stem[image.stem] = Sample(stem=image.stem, image=image, gt=gt, depths=depths)
    issues: list[Issue] = []
    if gone:
        issues.append(files_issue("missing-file", gone,
                                  f"{_plural(len(gone), 'file')} listed in {path.name} do not exist"))
    if dups:
        issues.append(_clash_issue(dups, "image"))
    if no_gt:
        issues.append(files_issue("orphan-image", no_gt,
                                  f"{_plural(len(no_gt), 'image')} have no mask in {path.name}"))
    for n in depth_names:
        if no_depth[n]:
            issue = files_issue("depth-incomplete", no_depth[n],
                                f"{_plural(len(no_depth[n]), 'image')} have no depth_{n} map in {path.name}")
            issues.append(Issue(issue.kind, f"{issue.message}; add a depth or depth_{n} column "
                                            "(`pdfnet depth --images DIR --out DIR` makes the maps)",
                                issue.files))
    complete = tuple(n for n in wanted if not no_depth[n])
    samples = tuple(Sample(s.stem, s.image, s.gt, {n: s.depths[n] for n in complete})
                    for _, s in sorted(by_stem.items()))
    index = SplitIndex(name=split, dir=path.parent, layout="list", samples=samples, depth_names=complete)
    return SplitScan(index, tuple(issues), len(rows), n_masks, counts)


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
        split: split folder name, e.g. ``DIS-TR``, or a list file (absolute or relative to ``root``).
        depth_names: depth folders that must exist and be complete (``depth_<name>``).
        require_gt: if true, every image needs a mask and every mask an image.
        optional_depths: depth folders to use when present (complete) and skip when absent.

    Returns:
        The split index; samples are sorted by stem.

    Raises:
        UserError: missing folders, unpaired files, duplicate stems or missing depth maps (the first kind
            of problem found, all its files counted).
    """
    scan = scan_split(root, split, depth_names, require_gt=require_gt, optional_depths=optional_depths)
    errors = scan.errors
    if errors:
        first = errors[0].kind
        group = [e for e in errors if e.kind in ({"orphan-image", "orphan-mask"} if first.startswith("orphan")
                                                  else {first})]
        raise UserError(f"{split}: " + "; ".join(e.message for e in group))
    return scan.index


def hold_out(samples: Sequence[Sample], fraction: float, seed: int,
             ) -> tuple[tuple[Sample, ...], tuple[Sample, ...]]:
    """Split samples into ``(train, val)``: ``round(fraction · n)`` of them (at least 1, at most n − 1)
    drawn with ``seed``, both parts in the input order. The draw depends only on the stems, the
    fraction and the seed, so every process and every resumed run gets the same split.

    Raises:
        UserError: ``fraction`` not in (0, 1) or fewer than 2 samples.
    """
    if not 0.0 < fraction < 1.0:
        raise UserError(f"data.val_fraction must be in (0, 1), got {fraction}")
    n = len(samples)
    if n < 2:
        raise UserError(f"data.val_fraction needs at least 2 samples in the training split, got {n}")
    n_val = min(n - 1, max(1, round(fraction * n)))
    order = sorted(range(n), key=lambda i: samples[i].stem)
    perm = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, n])).permutation(n)
    val = {order[j] for j in perm[:n_val]}
    return (tuple(s for i, s in enumerate(samples) if i not in val),
            tuple(s for i, s in enumerate(samples) if i in val))


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
    "DEPTH_ASPECT_TOL",
    "check_depth_aspect",
    "DEPTH_EXTS",
    "GT_THRESHOLD",
    "DIS5K_SPLITS",
    "IMAGE_EXTS",
    "LIST_EXTS",
    "STANDARD_DEPTHS",
    "Issue",
    "Sample",
    "SplitIndex",
    "SplitScan",
    "depth_command_hint",
    "discover",
    "discover_split",
    "files_issue",
    "hold_out",
    "is_list_split",
    "resolve_list_file",
    "scan_split",
    "split_depths",
]
