"""Idempotent, batched pseudo-depth precompute for DIS5K-layout trees and plain folders.

Pipeline (one pass per input size; DAv2-S/B/L at 518 share a pass, ``large_1024`` gets its own):

1. Plan: list sources, shard them over ``torchrun`` ranks (``RANK``/``WORLD_SIZE``), read image sizes
   from file headers (EXIF orientation applied, as decoding does) and check which outputs are already
   finished (threads). Finished = a PNG that decodes (PIL ``verify``: complete file, valid chunk
   CRCs) with the source's H×W and the requested bit depth, or a JPEG that decodes completely at the
   source's H×W; anything else (missing, truncated, wrong size/bit depth) is redone.
2. Batch: images are grouped by their network input size (so no padding ever changes results) and
   cut into batches of ``batch_size``.
3. Decode in a thread pool, a few batches ahead; the main thread runs every model of the pass on each
   batch (pre/post-processing and min–max on the device), and a second thread pool encodes and writes
   the maps atomically (temp file + rename), so a crash never leaves a partial file.

Formats (:data:`DEPTH_FORMATS`): ``png`` (default; lossless, 8 or 16 bit) or ``jpg`` — 8-bit grayscale JPEG at
quality 95, what the release's depth notebook writes (``cv2.imwrite`` of a ``.jpg`` with OpenCV's default
quality). The two hold the same map up to JPEG's loss (small on smooth depth maps).
4. Corrupt inputs are reported by name and skipped; the caller turns them into a non-zero exit.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from pdfnet.config import Config
from pdfnet.depth.estimator import DepthEstimator, load_depth_model
from pdfnet.depth.registry import (
    ALL_ALIASES,
    DEPTH_MODELS,
    TARGET_ALIAS,
    depth_folder_name,
    parse_model_paths,
    resolve_source,
    validate_name,
)
from pdfnet.errors import UserError
from pdfnet.utils.atomic import atomic_write_bytes
from pdfnet.utils.device import resolve_device
from pdfnet.utils.fs import check_output_dir
from pdfnet.utils.io import MAX_PIXELS, ImageReadError, header_size, list_images, read_rgb, write_image
from pdfnet.utils.layout import data_root, find_splits, image_dir
from pdfnet.utils.ranks import rank_shard, torchrun_env

log = logging.getLogger(__name__)

DEPTH_FORMATS: dict[str, str] = {"png": ".png", "jpg": ".jpg"}
"""``depth.format`` → file suffix of the written maps."""
JPEG_QUALITY = 95
"""OpenCV's default JPEG quality, which the release's notebook used."""


# ----------------------------------------------------------------------------------- planning
@dataclass
class DepthJob:
    """One source image and the depth maps to make from it (``{depth name: output path}``)."""

    src: Path
    outputs: dict[str, Path]


@dataclass
class DepthTarget:
    """A depth to compute: its name, how to load its estimator, and its nominal input size.

    ``input_size`` only groups targets into passes before any model is loaded; ``load`` is called
    once, and only if some image still needs this depth.
    """

    name: str
    load: Callable[[], DepthEstimator]
    input_size: int


@dataclass
class DepthRunStats:
    """What a run did. ``seconds`` is wall time of the compute phase (planning excluded)."""

    images: int = 0
    """Images decoded and run through at least one model."""
    written: int = 0
    """Depth maps written (or encoded only, when ``write=False``)."""
    skipped: int = 0
    """Depth maps already finished and left alone."""
    failed: list[str] = field(default_factory=list)
    """``"path: reason"`` per unreadable input."""
    seconds: float = 0.0
    model_seconds: float = 0.0
    """Time inside the estimators (upload, pre/post-processing, forward, min–max, download)."""
    plan_seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def merge(self, other: DepthRunStats) -> None:
        self.images += other.images
        self.written += other.written
        self.skipped += other.skipped
        self.failed += other.failed
        self.seconds += other.seconds
        self.model_seconds += other.model_seconds
        self.plan_seconds += other.plan_seconds


def is_target_split(split: str) -> bool:
    """Default rule for where ``large_1024`` (the training target) is made: training splits, i.e.
    names ending in ``TR`` after a ``-``/``_`` or alone (``DIS-TR``, ``HRSOD-TR``, ``TR``)."""
    s = split.upper()
    return s == "TR" or s.endswith("-TR") or s.endswith("_TR")


def _dst_name(src: Path, fmt: str = "png") -> str:
    if fmt not in DEPTH_FORMATS:
        raise UserError(f"depth format must be one of {', '.join(DEPTH_FORMATS)}, got {fmt!r}")
    return src.stem + DEPTH_FORMATS[fmt]


def _check_stems(srcs: list[Path], where: Path) -> None:
    seen: dict[str, Path] = {}
    for s in srcs:
        if s.stem in seen:
            raise UserError(f"two images share the name {s.stem!r} in {where}: {seen[s.stem].name}, {s.name}")
        seen[s.stem] = s


def plan_dataset(
    root: str | os.PathLike,
    names: list[str],
    splits: list[str] | None = None,
    target_splits: list[str] | None = None,
    fmt: str = "png",
) -> list[DepthJob]:
    """Jobs for a DIS5K-layout tree: ``<root>/<split>/depth_<name>/<stem>.<fmt>`` per image.

    Args:
        root: the data root (holds ``DIS-TR/``, ``DIS-VD/`` …).
        names: depth names (aliases or a custom name).
        splits: splits to do; None = every split found (:func:`pdfnet.utils.layout.find_splits`).
        target_splits: the only splits that get ``large_1024``; None = every split.
            ``pdfnet depth --model all`` passes the training splits (:func:`is_target_split`).
        fmt: ``png`` or ``jpg`` (:data:`DEPTH_FORMATS`).
    """
    root = data_root(root)
    available = find_splits(root)
    if splits is None:
        splits = available
        if not splits:
            raise UserError(f"no split with an images/ or im/ folder under {root}")
    missing = [s for s in splits if s not in available]
    if missing:
        raise UserError(
            f"split(s) {', '.join(missing)} not found under {root} with an images/ or im/ folder "
            f"(found: {', '.join(available) or 'none'})"
        )
    jobs: list[DepthJob] = []
    for split in splits:
        is_tgt = target_splits is None or split in target_splits
        split_names = [n for n in names if n != TARGET_ALIAS or is_tgt]
        if not split_names:
            continue
        img_dir = image_dir(root / split)  # UserError when both im/ and images/ exist
        assert img_dir is not None
        srcs = list_images(img_dir)
        _check_stems(srcs, img_dir)
        for src in srcs:
            outs = {n: root / split / depth_folder_name(n) / _dst_name(src, fmt) for n in split_names}
            jobs.append(DepthJob(src, outs))
    return jobs


def plan_folder(images: str | os.PathLike, out: str | os.PathLike, name: str, fmt: str = "png",
                ) -> list[DepthJob]:
    """Jobs for a plain folder: ``<out>/<stem>.<fmt>`` for every image in ``images`` (one depth)."""
    images, out = Path(images), Path(out)
    if not images.is_dir():
        raise UserError(f"images folder not found: {images}")
    if out.resolve() == images.resolve():
        raise UserError("--out must be a different folder from --images")
    srcs = list_images(images)
    if not srcs:
        raise UserError(f"no images found in {images}")
    _check_stems(srcs, images)
    return [DepthJob(s, {name: out / _dst_name(s, fmt)}) for s in srcs]


def shard(jobs: list[DepthJob], rank: int, world_size: int) -> list[DepthJob]:
    """Disjoint, deterministic share of ``jobs`` for one rank (sorted by source path, strided)."""
    ordered = sorted(jobs, key=lambda j: str(j.src))
    return [ordered[i] for i in rank_shard(len(ordered), rank, world_size)]


# --------------------------------------------------------------------------- finished outputs
def is_finished(dst: Path, size: tuple[int, int] | None, bits: int) -> bool:
    """True if ``dst`` is a complete, valid PNG (or 8-bit JPEG) of ``size`` (H, W) at ``bits`` per pixel."""
    if not dst.is_file():
        return False
    try:
        with Image.open(dst) as im:
            mode, (w, h) = im.mode, im.size
            if dst.suffix.lower() in (".jpg", ".jpeg"):
                im.load()  # JPEG has no checksums: a full decode is what finds a truncated file
            else:
                im.verify()
    except Exception:  # noqa: BLE001 - any failure to read counts as unfinished
        return False
    if size is not None and (h, w) != tuple(size):
        return False
    return mode == "L" if bits == 8 else mode in ("I;16", "I;16B", "I;16L", "I")


@dataclass
class _Planned:
    src: Path
    size: tuple[int, int] | None
    todo: dict[str, Path]


def _plan_one(job: DepthJob, bits: int, overwrite: bool) -> tuple[_Planned, int]:
    size = header_size(job.src)
    todo = {n: d for n, d in job.outputs.items() if overwrite or not is_finished(d, size, bits)}
    return _Planned(job.src, size, todo), len(job.outputs) - len(todo)


# ----------------------------------------------------------------------------------- running
def _batches(
    items: list[_Planned], key: Callable[[tuple[int, int]], tuple], batch_size: int
) -> list[list[_Planned]]:
    """Group by network input size (``key``); unknown sizes go alone. Order is deterministic."""
    groups: dict[tuple, list[_Planned]] = {}
    singles: list[list[_Planned]] = []
    for it in items:
        if it.size is None:
            singles.append([it])
        else:
            groups.setdefault(key(it.size), []).append(it)
    out: list[list[_Planned]] = []
    for k in sorted(groups):
        g = groups[k]
        out += [g[i : i + batch_size] for i in range(0, len(g), batch_size)]
    return out + singles


def _decode(batch: list[_Planned], max_pixels: int | None = MAX_PIXELS) -> list[np.ndarray | ImageReadError]:
    out: list[np.ndarray | ImageReadError] = []
    for it in batch:
        try:
            out.append(read_rgb(it.src, max_pixels=max_pixels))
        except ImageReadError as e:
            out.append(e)
    return out


def _prefetch(
    pool: ThreadPoolExecutor, batches: list[list[_Planned]], depth: int, max_pixels: int | None = MAX_PIXELS
) -> Iterator[tuple[list[_Planned], list[np.ndarray | ImageReadError]]]:
    """Yield ``(batch, decoded)`` in order while up to ``depth`` batches decode in the background.

    Each image is its own task so one batch decodes on several threads at once.
    """
    queue: deque[tuple[list[_Planned], list[Future]]] = deque()
    it = iter(batches)

    def submit() -> bool:
        b = next(it, None)
        if b is None:
            return False
        queue.append((b, [pool.submit(_decode, [x], max_pixels) for x in b]))
        return True

    for _ in range(depth):
        if not submit():
            break
    while queue:
        b, futs = queue.popleft()
        submit()
        yield b, [f.result()[0] for f in futs]


def _encode_write(dst: Path | None, arr: np.ndarray) -> None:
    suffix = ".png" if dst is None else dst.suffix.lower()
    if suffix in (".jpg", ".jpeg"):  # the release's 8-bit JPEG at OpenCV's default quality, said explicitly
        ok, buf = cv2.imencode(".jpg", arr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise UserError(f"JPEG encoding failed for {dst}")
        atomic_write_bytes(dst, buf.tobytes())
        return
    if dst is None:  # timing mode: encode, do not write
        ok, _ = cv2.imencode(".png", arr)
        if not ok:
            raise UserError("PNG encoding failed")
        return
    write_image(dst, arr, rgb=False)


class _Writer:
    """Bounded background PNG encode + atomic write; re-raises the first failure."""

    def __init__(self, pool: ThreadPoolExecutor, max_pending: int) -> None:
        self.pool, self.max_pending = pool, max_pending
        self.pending: set[Future] = set()

    def submit(self, dst: Path | None, arr: np.ndarray) -> None:
        self.pending.add(self.pool.submit(_encode_write, dst, arr))
        while len(self.pending) > self.max_pending:
            done, self.pending = wait(self.pending, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()

    def drain(self) -> None:
        while self.pending:
            self.pending.pop().result()


def _group_passes(targets: Iterable[DepthTarget]) -> list[list[DepthTarget]]:
    passes: dict[int, list[DepthTarget]] = {}
    for t in targets:
        passes.setdefault(t.input_size, []).append(t)
    return [passes[k] for k in sorted(passes)]


def run_depth(
    jobs: list[DepthJob],
    targets: list[DepthTarget],
    *,
    bits: int = 8,
    batch_size: int = 8,
    workers: int = 4,
    overwrite: bool = False,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    write: bool = True,
    max_pixels: int | None = MAX_PIXELS,
) -> DepthRunStats:
    """Compute the missing depth maps of ``jobs`` (this rank's shard), return what was done.

    Args:
        jobs: from :func:`plan_dataset` / :func:`plan_folder`; every output name must be a target.
        targets: one per depth name; estimators are loaded lazily, per pass.
        bits: 8 or 16 (PNG bit depth; JPEG outputs are 8-bit only).
        batch_size: images per forward.
        workers: decode threads and encode/write threads (each).
        overwrite: redo finished outputs too.
        rank, world_size: shard of ``jobs`` this process handles.
        progress: show a tqdm bar (images/s) on rank 0.
        write: False encodes the PNGs but writes nothing (benchmarking).
        max_pixels: images over this many pixels are skipped as unreadable, from the header, before
            decoding (None: no bound).
    """
    if bits not in (8, 16):
        raise UserError(f"bit depth must be 8 or 16, got {bits}")
    if bits == 16 and any(d.suffix.lower() in (".jpg", ".jpeg") for j in jobs for d in j.outputs.values()):
        raise UserError("JPEG depth maps are 8-bit; use --format png with --bit-depth 16")
    if batch_size < 1 or workers < 1:
        raise UserError("batch size and workers must be >= 1")
    by_name = {t.name: t for t in targets}
    unknown = {n for j in jobs for n in j.outputs} - set(by_name)
    if unknown:
        raise ValueError(f"jobs name depths without a target: {sorted(unknown)}")
    stats = DepthRunStats()
    mine = shard(jobs, rank, world_size)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(workers, 1), thread_name_prefix="depth-io") as pool:
        planned = []
        for p, skipped in pool.map(lambda j: _plan_one(j, bits, overwrite), mine):
            planned.append(p)
            stats.skipped += skipped
    stats.plan_seconds = time.perf_counter() - t0
    if write:  # every output folder writable before any model loads
        for folder in sorted({d.parent for p in planned for d in p.todo.values()}):
            check_output_dir(folder, "depth output folder")
    show = progress and rank == 0
    for group in _group_passes(targets):
        names = [t.name for t in group]
        items = [p for p in planned if any(n in p.todo for n in names)]
        if not items:
            continue
        ests = {t.name: t.load() for t in group}
        stats.merge(_run_pass(items, ests, bits, batch_size, workers, show, write, max_pixels))
        del ests
    return stats


def _run_pass(
    items: list[_Planned],
    ests: dict[str, DepthEstimator],
    bits: int,
    batch_size: int,
    workers: int,
    show: bool,
    write: bool,
    max_pixels: int | None = MAX_PIXELS,
) -> DepthRunStats:
    stats = DepthRunStats()
    est_list = list(ests.values())

    def key(size: tuple[int, int]) -> tuple:
        return tuple(e.target_size(*size) for e in est_list)

    batches = _batches(items, key, batch_size)
    desc = "depth " + "+".join(ests)
    t0 = time.perf_counter()
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="depth-decode") as dpool,
        ThreadPoolExecutor(workers, thread_name_prefix="depth-write") as wpool,
        tqdm(total=len(items), desc=desc, unit="img", disable=not show, dynamic_ncols=True) as bar,
    ):
        writer = _Writer(wpool, max_pending=4 * batch_size * len(ests))
        try:
            for batch, decoded in _prefetch(dpool, batches, depth=max(2, workers), max_pixels=max_pixels):
                ok: list[tuple[_Planned, torch.Tensor]] = []
                for it, img in zip(batch, decoded, strict=True):
                    if isinstance(img, ImageReadError):
                        stats.failed.append(f"{it.src}: {img}")
                        bar.write(f"depth: skipping unreadable input {it.src} ({img})")
                    else:
                        ok.append((it, torch.from_numpy(img)))
                # Actual decoded sizes decide the groups (headers can lie or be missing).
                groups: dict[tuple, list[tuple[_Planned, torch.Tensor]]] = {}
                for it, t in ok:
                    groups.setdefault(key((t.shape[0], t.shape[1])), []).append((it, t))
                for members in groups.values():
                    shared: dict[tuple, tuple] = {}  # one upload + resize for models with equal inputs
                    for name, est in ests.items():
                        idx = tuple(i for i, (it, _) in enumerate(members) if name in it.todo)
                        if not idx:
                            continue
                        sub = [members[i] for i in idx]
                        t1 = time.perf_counter()
                        h, w = sub[0][1].shape[:2]
                        k = (est.input_key(h, w), idx)
                        if k not in shared:
                            shared[k] = est.prepare([t for _, t in sub])
                        maps = est.quantized_batch(bits=bits, prepared=shared[k])
                        stats.model_seconds += time.perf_counter() - t1
                        for (it, _), m in zip(sub, maps, strict=True):
                            writer.submit(it.todo[name] if write else None, m)
                            stats.written += 1
                stats.images += len(ok)
                bar.update(len(batch))
            writer.drain()
        except BaseException:
            for f in writer.pending:
                f.cancel()
            raise
    stats.seconds = time.perf_counter() - t0
    return stats


def time_depth(
    files: list[str | os.PathLike],
    estimator: DepthEstimator,
    *,
    batch_size: int = 8,
    workers: int = 4,
    bits: int = 8,
    progress: bool = False,
) -> DepthRunStats:
    """Run the full pipeline (decode → depth → min–max → PNG encode) over ``files`` without writing.

    For benchmarks: ``stats.images_per_s`` is end-to-end throughput, ``stats.model_seconds`` the time
    spent in the estimator. Warm the device up first (e.g. call once on a few files) for stable numbers.
    """
    name = estimator.name or "model"
    jobs = [DepthJob(Path(f), {name: Path(os.devnull)}) for f in files]
    target = DepthTarget(name, lambda: estimator, estimator.input_size)
    return run_depth(
        jobs, [target], bits=bits, batch_size=batch_size, workers=workers, overwrite=True,
        progress=progress, write=False,
    )


# --------------------------------------------------------------------------------------------------
# `pdfnet depth`: from the depth config to the maps on disk


def parse_models(spec: list[str], name: str | None, *, folder_form: bool = False,
                 ) -> tuple[list[tuple[str, str]], bool]:
    """``[(depth name, alias or model id/dir)]`` and whether ``all`` was asked for.

    A custom model (a transformers id or directory) writes ``depth_<name>`` in the dataset form, so it needs
    ``name`` there; the folder form writes into its output folder and needs no name.
    """
    tokens = [t.strip() for item in spec for t in item.split(",") if t.strip()]
    if not tokens:
        raise UserError("--model is empty")
    has_all = "all" in tokens
    out: list[tuple[str, str]] = []
    custom = [t for t in tokens if t != "all" and t not in DEPTH_MODELS]
    if len(custom) > 1:
        raise UserError(f"at most one custom model per command, got {', '.join(custom)}")
    if custom and not name and not folder_form:
        raise UserError(f"--name is required for the custom model {custom[0]!r} (folder depth_<name>)")
    if name and not custom:
        raise UserError("--name is only for a custom model id/dir; aliases use their own folder names")
    for t in tokens:
        if t == "all":
            out += [(a, a) for a in ALL_ALIASES]
        elif t in DEPTH_MODELS:
            out.append((t, t))
        else:
            out.append((validate_name(name) if name else "custom", t))
    seen: dict[str, str] = {}
    for n, src in out:
        if n in seen and seen[n] != src:
            raise UserError(f"--name {n!r} clashes with the alias of the same name")
        seen[n] = src
    return list(seen.items()), has_all


def precompute_depth(cfg: Config, *, dataset_root: str | os.PathLike | None = None,
                     splits: list[str] | None = None, images: str | os.PathLike | None = None,
                     out: str | os.PathLike | None = None, polarity: str = "auto", overwrite: bool = False,
                     progress: bool = True) -> DepthRunStats:
    """Write the depth maps ``cfg.depth`` asks for: every split of a dataset, or one folder of images.

    Dataset form (``dataset_root``): ``<root>/<split>/depth_<name>/<stem>.png`` for
    every model of ``cfg.depth.models`` (``large_1024`` only for the target splits). Folder form (``images``
    and ``out``): one model, ``<out>/<stem>.png``. Under ``torchrun`` each rank takes a share of the images.

    Raises:
        UserError: conflicting or missing arguments, bad values, unknown models or folders.
    """
    d = cfg.depth
    if d.batch_size < 1 or d.threads < 1:
        raise UserError("--batch-size and --threads must be >= 1")
    if d.input_size is not None and d.input_size < 14:
        raise UserError(f"--input-size must be >= 14, got {d.input_size}")
    folder_form = images is not None or out is not None
    models, has_all = parse_models(d.models, d.name, folder_form=folder_form)
    model_paths = parse_model_paths(d.model_paths)
    if folder_form:
        if dataset_root or splits:
            raise UserError("use either --images/--out or --data-root/--splits, not both")
        if not (images and out):
            raise UserError("the folder form needs both --images and --out")
        if len(models) != 1:
            raise UserError("the folder form takes one model; run once per model (or use --data-root)")
        jobs = plan_folder(images, out, models[0][0], fmt=d.format)
    else:
        root = dataset_root
        if not root:
            raise UserError("give --data-root DIR (DIS5K layout) or --images DIR --out DIR")
        target_splits = None
        if has_all:
            if d.target_splits is not None:
                target_splits = d.target_splits
            else:
                target_splits = [s for s in (splits or find_splits(root)) if is_target_split(s)]
        jobs = plan_dataset(root, [n for n, _ in models], splits=splits, target_splits=target_splits,
                            fmt=d.format)

    rank, world, local_rank = torchrun_env()
    device = resolve_device(d.device)
    if device.type == "cuda" and world > 1 and device.index is None:
        device = torch.device("cuda", local_rank)
    dtype = None if d.dtype == "auto" else d.dtype
    cache: dict[str, torch.nn.Module] = {}  # one copy of weights shared by large and large_1024

    def loader(src: str) -> Callable[[], DepthEstimator]:
        def load() -> DepthEstimator:
            source = resolve_source(src, model_paths, d.models_dir)
            if source not in cache:
                cache[source] = load_depth_model(source)
            input_size = None if src == TARGET_ALIAS else d.input_size
            return DepthEstimator.from_pretrained(
                src, device=device, dtype=dtype, input_size=input_size, batch_size=d.batch_size,
                polarity=polarity, model_paths=model_paths, models_dir=d.models_dir, model=cache[source],
            )
        return load

    targets = []
    for name, src in models:
        spec = DEPTH_MODELS.get(src)
        size = spec.input_size if spec and (src == TARGET_ALIAS or d.input_size is None) else d.input_size
        targets.append(DepthTarget(name, loader(src), size or 518))
    return run_depth(jobs, targets, bits=d.bit_depth, batch_size=d.batch_size, workers=d.threads,
                     overwrite=overwrite, rank=rank, world_size=world, progress=progress,
                     max_pixels=d.max_pixels or None)
