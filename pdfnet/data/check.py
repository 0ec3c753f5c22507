"""Dataset checks: the one mechanism behind ``pdfnet data check`` and the fail-fast checks that
``pdfnet train``, model ``pdfnet eval`` and ``pdfnet predict`` run before their first batch.

What is checked, per split (see :func:`check_splits`):

* pairing, from :func:`pdfnet.data.dis5k.scan_split`: images without masks and masks without images,
  stems that clash across extensions, files a list file names that do not exist, depth folders that are
  missing or incomplete (for the depth names the caller needs);
* every file, in parallel: images and depth maps are opened **header-level** (format, size, channels,
  EXIF orientation) and their trailer is checked (a JPEG's end-of-image marker, a PNG's ``IEND`` chunk)
  so a truncated download is caught without decoding pixels; masks are decoded (their values matter),
  with the same decoder the dataset uses; ``decode=True`` decodes images too;
* image/mask size mismatches; depth maps whose aspect ratio differs from the image's by more than
  :data:`~pdfnet.data.dis5k.DEPTH_ASPECT_TOL` (the dataset refuses them);
* masks: values only 0/1 (error: foreground is > :data:`~pdfnet.data.dis5k.GT_THRESHOLD`), and as
  warnings (errors with ``strict``): not single-channel, not binary (the share of soft pixels), empty.

Results are cached per file by (path, size, mtime) in a JSON file under the user cache folder
(``$PDFNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/pdfnet``, else ``~/.cache/pdfnet``), so a rerun on an
unchanged dataset only stats its files. A cache that cannot be read or written is ignored.

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from pdfnet.data.dis5k import (
    DEPTH_ASPECT_TOL,
    GT_THRESHOLD,
    Issue,
    Sample,
    SplitIndex,
    scan_split,
    split_depths,
)
from pdfnet.errors import ImageReadError, ImageTooLargeError, UserError
from pdfnet.utils.atomic import atomic_write_bytes
from pdfnet.utils.io import MAX_PIXELS, check_image_bounds, header_size, read_alpha, read_gray, read_rgb
from pdfnet.utils.layout import find_splits
from pdfnet.utils.parallel import process_pool

CHECK_VERSION = 1
"""Bumped whenever a probe's meaning changes (older cache entries are then ignored)."""
_POOL_MIN = 64  # fewer files are probed in this process (a pool costs more than it saves)
_BAR_MIN = 200  # a progress bar from this many files to probe
_SHOW = 5


# ------------------------------------------------------------------------------------- probes
@dataclass(frozen=True)
class Probe:
    """What one file turned out to be. ``error`` is None when it can be used.

    ``soft``, ``fg`` and ``vmax`` are set for masks only: the share of pixels strictly between 0 and
    255, the share above :data:`GT_THRESHOLD`, and the largest value (8-bit).
    """

    error: str | None = None
    height: int = 0
    width: int = 0
    channels: int = 0
    soft: float = 0.0
    fg: float = 0.0
    vmax: int = 0


def _trailer_error(path: Path, fmt: str | None) -> str | None:
    """A cheap completeness check of the end of the file (None when it looks complete)."""
    if fmt not in ("JPEG", "MPO", "PNG"):
        return None
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4096))
        tail = f.read()
    if fmt == "PNG":
        return None if b"IEND" in tail[-64:] else "truncated PNG (no IEND chunk)"
    return None if b"\xff\xd9" in tail else "truncated JPEG (no end-of-image marker)"


def _header(path: Path, oriented: bool, max_pixels: int | None = MAX_PIXELS) -> Probe:
    """Size (:func:`~pdfnet.utils.io.header_size`, OpenCV's orientation rule with ``oriented``) and
    channels from the header, pixels not decoded; a file over the readers' pixel bound is an error.

    Raises:
        ValueError: PIL cannot parse the header (the caller lets OpenCV decide).
    """
    try:
        check_image_bounds(path, max_pixels)
    except ImageTooLargeError as e:
        return Probe(error=_reason(e))
    hw = header_size(path, oriented)
    if hw is None:
        raise ValueError(f"no readable header: {path}")
    with Image.open(path) as im:
        fmt, channels = im.format, len(im.getbands())
    return Probe(error=_trailer_error(path, fmt), height=hw[0], width=hw[1], channels=channels)


def probe_image(path: str | os.PathLike, decode: bool = False, max_pixels: int | None = MAX_PIXELS) -> Probe:
    """An input image: header-level (size as :func:`~pdfnet.utils.io.read_rgb` returns it), or fully
    decoded with ``decode``."""
    path = Path(path)
    if not decode:
        try:
            return _header(path, oriented=True, max_pixels=max_pixels)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            pass  # not a format PIL knows (or a bomb by its rule): let OpenCV decide
    try:
        h, w = read_rgb(path, max_pixels=max_pixels).shape[:2]
    except ImageReadError as e:
        return Probe(error=_reason(e))
    return Probe(height=h, width=w, channels=3)


def _mask_stats(m: np.ndarray, channels: int) -> Probe:
    hist = cv2.calcHist([m], [0], None, [256], [0, 256]).ravel()  # ~10x faster than np.bincount
    n = max(1, m.size)
    return Probe(height=m.shape[0], width=m.shape[1], channels=channels,
                 soft=float(hist[1:255].sum() / n), fg=float(hist[GT_THRESHOLD + 1:].sum() / n),
                 vmax=int(np.flatnonzero(hist)[-1]) if m.size else 0)


def probe_mask(path: str | os.PathLike) -> Probe:
    """A GT mask file, decoded as the dataset reads it (:func:`~pdfnet.utils.io.read_gray`)."""
    path = Path(path)
    try:
        m = read_gray(path)
    except ImageReadError as e:
        return Probe(error=_reason(e))
    try:
        with Image.open(path) as im:
            channels = len(im.getbands())
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        channels = 1
    return _mask_stats(m, channels)


def probe_alpha(path: str | os.PathLike) -> Probe:
    """The alpha channel of an RGBA image used as its mask."""
    try:
        return _mask_stats(read_alpha(path), 1)
    except ImageReadError as e:
        return Probe(error=_reason(e))


def probe_depth(path: str | os.PathLike) -> Probe:
    """A depth map: header-level size (read unchanged, without EXIF orientation, as the dataset does)."""
    path = Path(path)
    try:
        return _header(path, oriented=False)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        pass
    try:
        h, w = read_gray(path).shape[:2]
    except ImageReadError as e:
        return Probe(error=_reason(e))
    return Probe(height=h, width=w, channels=1)


def _reason(e: ImageReadError) -> str:
    msg = str(e)
    return msg.rsplit(": ", 1)[0] if ": " in msg else msg  # the path is named by the caller


_PROBES = {"image": probe_image, "mask": probe_mask, "alpha": probe_alpha, "depth": probe_depth}


def _run_probe(job: tuple[str, str, bool, int | None]) -> Probe:
    kind, path, decode, max_pixels = job
    if kind == "image":
        return probe_image(path, decode, max_pixels)
    try:
        return _PROBES[kind](path)
    except OSError as e:  # vanished or unreadable between listing and probing
        return Probe(error=f"cannot read ({e.strerror or e})")


# -------------------------------------------------------------------------------------- cache
def default_cache_dir() -> Path:
    """``$PDFNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/pdfnet``, else ``~/.cache/pdfnet``."""
    if os.environ.get("PDFNET_CACHE_DIR"):
        return Path(os.environ["PDFNET_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pdfnet"


class ProbeCache:
    """Probe results keyed by ``(kind, decode, absolute path)`` and valid while ``(size, mtime_ns)``
    are unchanged. ``path=None`` keeps nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        self.dirty = False
        if path is not None:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                if doc.get("version") == CHECK_VERSION:
                    self.entries = dict(doc["entries"])
            except (OSError, ValueError, KeyError, TypeError):
                self.entries = {}

    @staticmethod
    def for_root(root: str | os.PathLike, cache_dir: Path | None = None) -> ProbeCache:
        key = hashlib.sha1(str(Path(root).resolve()).encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return ProbeCache((cache_dir or default_cache_dir()) / "data-check" / f"{key}.json")

    @staticmethod
    def _key(job: tuple[str, str, bool, int | None]) -> str:
        kind, path, decode, max_pixels = job
        return f"{kind}:{int(decode and kind == 'image')}:{max_pixels}:{os.path.abspath(path)}"

    @staticmethod
    def _stamp(path: str) -> list[int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return [st.st_size, st.st_mtime_ns]

    def get(self, job: tuple[str, str, bool, int | None]) -> Probe | None:
        hit = self.entries.get(self._key(job))
        stamp = self._stamp(job[1])
        if hit is None or stamp is None or hit[0] != stamp:
            return None
        try:
            return Probe(**hit[1])
        except TypeError:
            return None

    def put(self, job: tuple[str, str, bool], probe: Probe) -> None:
        stamp = self._stamp(job[1])
        if self.path is not None and stamp is not None:
            self.entries[self._key(job)] = [stamp, probe.__dict__]
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        data = json.dumps({"version": CHECK_VERSION, "entries": self.entries}, ensure_ascii=False)
        try:
            atomic_write_bytes(self.path, data.encode("utf-8", "surrogatepass"))
        except OSError:
            pass  # a cache is an optimisation: an unwritable cache folder only costs time
        self.dirty = False


def probe_files(jobs: Sequence[tuple[str, str, bool, int | None]], *, workers: int | None = None,
                cache: ProbeCache | None = None, progress: bool = True, desc: str = "check",
                ) -> list[Probe]:
    """Probe ``(kind, path, decode, max_pixels)`` jobs (kind: image, mask, alpha or depth), in order.

    Cached results are reused; the others run in a process pool when there are many (``workers``:
    processes, default the CPU count up to 8; 1 = this process only) with a tqdm bar on large sets.
    """
    cache = cache or ProbeCache(None)
    out: list[Probe | None] = [cache.get(j) for j in jobs]
    todo = [i for i, p in enumerate(out) if p is None]
    workers = min(8, os.cpu_count() or 1) if workers is None else max(1, workers)
    bar = tqdm(total=len(todo), desc=desc, unit="file", file=sys.stderr, dynamic_ncols=True,
               disable=not progress or len(todo) < _BAR_MIN)
    try:
        if workers > 1 and len(todo) >= _POOL_MIN:
            with process_pool(workers, preload=["pdfnet.data.check"]) as pool:
                chunk = max(1, min(64, len(todo) // (workers * 4)))
                for i, probe in zip(todo, pool.map(_run_probe, [jobs[i] for i in todo], chunksize=chunk)):
                    out[i] = probe
                    bar.update(1)
        else:
            for i in todo:
                out[i] = _run_probe(jobs[i])
                bar.update(1)
    finally:
        bar.close()
    for i in todo:
        cache.put(jobs[i], out[i])
    cache.save()
    return [p for p in out if p is not None]


# ------------------------------------------------------------------------------------ reports
@dataclass
class SplitReport:
    """The check of one split: what was found and the problems (errors and warnings)."""

    name: str
    layout: str = ""
    n_images: int = 0
    n_masks: int = 0
    n_samples: int = 0
    depth_counts: dict[str, int] = field(default_factory=dict)
    depth_required: tuple[str, ...] = ()
    issues: list[Issue] = field(default_factory=list)
    soft_share: float = 0.0
    """Soft pixels over all pixels of the split's masks."""

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if not i.warning]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.warning]

    def summary(self) -> str:
        """One line: counts and depth coverage."""
        if not self.layout:
            return f"{self.name}: not checked"
        depth = ", ".join(f"{n} {c}/{self.n_images}" for n, c in sorted(self.depth_counts.items()))
        missing = [n for n in self.depth_required if n not in self.depth_counts]
        if missing:
            depth = ", ".join(filter(None, [depth, *(f"{n} missing" for n in missing)]))
        return (f"{self.name} ({self.layout}): {self.n_images} images, {self.n_masks} masks, "
                f"{self.n_samples} pairs; depth: {depth or 'none'}")


@dataclass
class CheckReport:
    """:func:`check_splits`'s result over several splits."""

    root: str
    splits: list[SplitReport]
    indexes: dict[str, SplitIndex] = field(default_factory=dict)
    """The index of every split that could be scanned (what a dataset built from it would read)."""

    @property
    def errors(self) -> list[tuple[str, Issue]]:
        return [(s.name, i) for s in self.splits for i in s.errors]

    @property
    def warnings(self) -> list[tuple[str, Issue]]:
        return [(s.name, i) for s in self.splits for i in s.warnings]

    @property
    def ok(self) -> bool:
        return not self.errors

    def first_problem(self) -> str:
        """One line: the first error and how many more there are ('' when there is none)."""
        errs = self.errors
        if not errs:
            return ""
        split, issue = errs[0]
        more = len(errs) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''}; `pdfnet data check` lists them)" \
            if more else ""
        return f"{split}: {issue.message}{tail}"

    def raise_if_failed(self) -> None:
        """Raise :class:`DataCheckError` with :meth:`first_problem` when there is an error."""
        if self.errors:
            raise DataCheckError(self.first_problem())


class DataCheckError(UserError):
    """A dataset failed its check (the message names the first problem and counts the others)."""


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:_SHOW]) + (", ..." if len(names) > _SHOW else "")


_VERB_FORMS = {"are": "is", "differ": "differs", "have": "has", "hold": "holds"}


def _files_issue(kind: str, count_word: str, entries: list[str], what: str, warning: bool = False) -> Issue:
    """``"<n> <count_word>s <what> (first: ...)"``; ``what`` is written for the plural and its first
    word is made singular for one file."""
    n = len(entries)
    if n == 1:
        verb, _, rest = what.partition(" ")
        what = f"{_VERB_FORMS.get(verb, verb)} {rest}"
    return Issue(kind, f"{n} {count_word if n == 1 else count_word + 's'} {what} (first: {_shown(entries)})",
                 tuple(entries), warning)


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _sample_findings(s: Sample, probes: Mapping[tuple[str, str], Probe], base: Path,
                     found: dict[str, list[str]], px: list[float]) -> None:
    """Add one sample's problems to ``found`` (kind → entries); ``px`` sums soft and all mask pixels."""
    mask_kind = "alpha" if s.gt_alpha else "mask"
    files = [("image", s.image), *([(mask_kind, s.gt)] if s.gt is not None else []),
             *(("depth", p) for p in s.depths.values())]
    for kind, path in files:
        p = probes[(kind, str(path))]
        if p.error:
            found["unreadable"].append(f"{_rel(path, base)} ({p.error})")
    img = probes[("image", str(s.image))]
    if img.error:
        return
    m = probes[(mask_kind, str(s.gt))] if s.gt is not None else None
    if m is not None and not m.error:
        name = _rel(s.gt, base)
        if (m.height, m.width) != (img.height, img.width):
            found["size-mismatch"].append(f"{name} {m.height}x{m.width} vs image {img.height}x{img.width}")
        if m.vmax == 1:
            found["mask-levels"].append(name)
        elif m.fg == 0.0:
            found["mask-empty"].append(name)
        if m.channels > 1 and not s.gt_alpha:
            found["mask-channels"].append(name)
        if m.soft > 0 and m.vmax > 1:
            found["mask-soft"].append(name)
            px[0] += m.soft * m.height * m.width
        px[1] += m.height * m.width
    for path in s.depths.values():
        d = probes[("depth", str(path))]
        if not d.error and d.height and abs((d.width / d.height) / (img.width / img.height) - 1.0) \
                > DEPTH_ASPECT_TOL:
            found["depth-size"].append(f"{_rel(path, base)} {d.height}x{d.width} vs image "
                                       f"{img.height}x{img.width}")


def _file_issues(index: SplitIndex, probes: Mapping[tuple[str, str], Probe], strict: bool,
                 ) -> tuple[list[Issue], float]:
    """Issues from the probes of one split's files, and the share of soft mask pixels."""
    found: dict[str, list[str]] = defaultdict(list)
    px = [0.0, 0.0]
    for s in index.samples:
        _sample_findings(s, probes, index.dir, found, px)
    share = px[0] / px[1] if px[1] else 0.0
    note = "" if strict else "; --strict fails on this"
    what = {
        "unreadable": ("file", "are unreadable or corrupt"),
        "size-mismatch": ("mask", "differ in size from their image"),
        "depth-size": ("depth map", "have another aspect ratio than their image (stale or mismatched "
                                    "depth?)"),
        "mask-levels": ("mask", f"hold only the values 0 and 1 (foreground is > {GT_THRESHOLD}: scale them "
                                "to 0/255)"),
        "mask-channels": ("mask", f"are not single-channel (read as gray with BGR->GRAY weights{note})"),
        "mask-soft": ("mask", f"are not binary ({100 * share:.2f}% of all mask pixels are soft; training "
                              f"binarises at > {GT_THRESHOLD}{note})"),
        "mask-empty": ("mask", f"are empty (no pixel > {GT_THRESHOLD}{note})"),
    }
    soft_kinds = {"mask-channels", "mask-soft", "mask-empty"}
    out = [_files_issue(kind, word, found[kind], text, warning=kind in soft_kinds and not strict)
           for kind, (word, text) in what.items() if found.get(kind)]
    return out, share


def check_splits(
    root: str | os.PathLike,
    splits: Sequence[str] | None = None,
    *,
    depths: Sequence[str] | Mapping[str, Sequence[str]] = (),
    require_gt: bool = True,
    strict: bool = False,
    decode: bool = False,
    workers: int | None = None,
    cache: bool | ProbeCache = True,
    progress: bool = True,
) -> CheckReport:
    """Check splits of a dataset (DIS5K, generic folders or list files) without raising.

    Args:
        root: the data root (list-file splits may be absolute paths).
        splits: split folder names or list files; None = every split folder under ``root``.
        depths: depth names every split needs (``depth_<name>``), or ``{split: names}``; depth folders
            present beyond these are counted and their maps checked when complete.
        require_gt: masks are required (training and model evaluation).
        strict: non-binary, multi-channel and empty masks are errors instead of warnings.
        decode: decode every image fully instead of the header-level check.
        workers: processes for probing (default: CPU count up to 8).
        cache: reuse/store probe results (True: the user cache for this root; or a :class:`ProbeCache`).
        progress: tqdm bar when there are many files to probe.

    Returns:
        A :class:`CheckReport`; ``report.raise_if_failed()`` turns its first error into one line.

    Raises:
        UserError: only when ``root`` does not exist or holds no split at all.
    """
    if splits is None:
        splits = find_splits(root)
        if not splits:
            if not Path(root).is_dir():
                raise UserError(f"data root not found: {root}")
            root_p = Path(root).resolve()
            if any((root_p / d).is_dir() for d in ("im", "images")):
                raise UserError(f"{root} is a split folder itself; give the folder holding it: "
                                f"{root_p.parent} --splits {root_p.name}")
            raise UserError(f"no split folders under {root} (a split holds im/ + gt/ or images/ + masks/)")
    probe_cache = cache if isinstance(cache, ProbeCache) else ProbeCache.for_root(root) if cache \
        else ProbeCache(None)
    reports: list[SplitReport] = []
    indexes: dict[str, SplitIndex] = {}
    for split in splits:
        need = list(depths.get(split, ()) if isinstance(depths, Mapping) else depths)
        rep = SplitReport(split, depth_required=tuple(need))
        reports.append(rep)
        try:
            scan = scan_split(root, split, need, require_gt=require_gt, optional_depths=_present(root, split))
        except UserError as e:
            msg = str(e)
            rep.issues.append(Issue("split", msg[len(split) + 2:] if msg.startswith(f"{split}: ") else msg))
            continue
        indexes[split] = scan.index
        rep.layout, rep.n_images, rep.n_masks = scan.index.layout, scan.n_images, scan.n_masks
        rep.n_samples, rep.depth_counts = len(scan.index), dict(scan.depth_counts)
        rep.issues += scan.issues
        incomplete = [n for n, c in scan.depth_counts.items() if c < len(scan.index) and n not in need]
        if incomplete and len(scan.index):
            rep.issues.append(Issue(
                "depth-incomplete",
                "incomplete depth folders (not used until complete): "
                + ", ".join(f"depth_{n} {scan.depth_counts[n]}/{len(scan.index)}" for n in incomplete),
                warning=True))
    jobs: list[tuple[str, str, bool, int | None]] = []
    for index in indexes.values():
        for s in index.samples:
            jobs.append(("image", str(s.image), decode, MAX_PIXELS))
            if s.gt is not None:
                jobs.append(("alpha" if s.gt_alpha else "mask", str(s.gt), decode, MAX_PIXELS))
            jobs += [("depth", str(p), decode, MAX_PIXELS) for p in s.depths.values()]
    jobs = list(dict.fromkeys(jobs))
    results = probe_files(jobs, workers=workers, cache=probe_cache, progress=progress)
    probes = {(k, p): r for (k, p, _, _), r in zip(jobs, results)}
    for rep in reports:
        if rep.name in indexes:
            issues, rep.soft_share = _file_issues(indexes[rep.name], probes, strict)
            rep.issues += issues
            rep.issues.sort(key=lambda i: i.warning)
    return CheckReport(str(root), reports, indexes)


def _present(root: str | os.PathLike, split: str) -> list[str]:
    try:
        return [n for n in split_depths(root, split) if n != "*"]
    except UserError:
        return []


def check_files(paths: Iterable[str | os.PathLike], *, max_pixels: int | None = MAX_PIXELS,
                workers: int | None = None, cache: ProbeCache | None = None,
                progress: bool = True) -> dict[Path, str]:
    """Header-level check of loose input images (``pdfnet predict``): ``{path: reason}`` for each file
    that cannot be read or is over ``max_pixels`` (None: no bound), in input order."""
    paths = [Path(p) for p in paths]
    jobs = [("image", str(p), False, max_pixels) for p in paths]
    res = probe_files(jobs, workers=workers, cache=cache, progress=progress, desc="check inputs")
    return {p: r.error for p, r in zip(paths, res) if r.error}


__all__ = [
    "CHECK_VERSION",
    "CheckReport",
    "DataCheckError",
    "Probe",
    "ProbeCache",
    "SplitReport",
    "check_files",
    "check_splits",
    "default_cache_dir",
    "probe_alpha",
    "probe_depth",
    "probe_files",
    "probe_image",
    "probe_mask",
]
