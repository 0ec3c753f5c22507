"""Score a folder of predictions against a folder of GT masks (the ``pdfnet eval --pred-dir/--gt-dir`` mode).

Pairing is by file stem (``name.png`` ↔ ``name.jpg`` is fine); a stem present on one side only, or twice on
one side, is a :class:`~pdfnet.errors.UserError` naming the files. Images are decoded like the DIS tools
(``cv2.imread(path, IMREAD_GRAYSCALE)``). A prediction whose size differs from its GT is resized to the GT
size with ``cv2.resize(pred, (W, H), interpolation=INTER_LINEAR)`` on the uint8 map (BiRefNet's rule); the
affected names are listed in ``meta.resized`` of the result. Write predictions at GT size to avoid this.

Work is split over ``workers`` processes in all: the calling one and ``workers - 1`` pool workers (the caller
scores images from the front while the pool starts and takes them from the back); the records are added in
sorted-name order, so the result does not depend on the number of workers. GT skeletons for HCE can be
cached on disk (:class:`~pdfnet.metrics.skeleton.SkeletonCache`): keyed by the hash of the GT file's bytes, an
entry holds the binarised GT and its skeleton, so a cached run neither decodes the GT images nor skeletonises
them.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from pdfnet.errors import UserError
from pdfnet.metrics.dis import DISMetrics
from pdfnet.metrics.record import AGGREGATE_KEYS, evaluate_pair
from pdfnet.metrics.skeleton import SkeletonCache
from pdfnet.utils.io import ImageReadError, list_images
from pdfnet.utils.parallel import map_shared, process_pool
from pdfnet.utils.provenance import package_versions

RESULT_SCHEMA = "pdfnet.eval/1"

PROTOCOL = {
    "maxF_rule": "max over 256 thresholds of the dataset-mean F curve (beta^2 = 0.3)",
    "maxF_meanPR_rule": "max over thresholds of F(mean precision, mean recall) (official PDFNet evaluator)",
    "thresholds": "256; curve index i means q >= 255 - i, q = uint8(minmax(pred/255) * 255)",
    "gt_foreground": "gt > 128",
    "E": "meanE = mean of the dataset-mean E curve (DIS papers report meanE)",
    "S": "alpha 0.5, PySOD 1.6.2; images with undefined S (NaN) skipped in the dataset mean",
    "wF": "Margolin beta 1, scipy EDT tie rule",
    "HCE": "official IS-Net relax_HCE, raw pred > 128, relax 5, epsilon 2.0, OpenCV<=4.12 approxPolyDP",
    "resize": "pred resized to GT size with cv2 INTER_LINEAR when sizes differ",
}


def read_gray_u8(path: str | os.PathLike) -> np.ndarray:
    """``cv2.imread(path, IMREAD_GRAYSCALE)`` with a clear error (uint8 ``[H, W]``)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"file not found: {path}")
    buf = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if img is None:
        raise ImageReadError(f"cannot decode image: {path}")
    return img


def _stems(files: Sequence[Path], side: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise UserError(f"two {side} files share the stem {f.stem!r}: {out[f.stem].name}, {f.name}")
        out[f.stem] = f
    return out


def _few(names: Sequence[str], k: int = 5) -> str:
    s = ", ".join(names[:k])
    return s + (f", ... ({len(names)} in all)" if len(names) > k else "")


def pair_folders(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """Sorted ``(stem, pred_path, gt_path)`` pairs; :class:`UserError` on missing/extra/duplicate files."""
    pd, gd = Path(pred_dir), Path(gt_dir)
    for d, what in ((pd, "prediction"), (gd, "GT")):
        if not d.is_dir():
            raise UserError(f"{what} folder not found: {d}")
    preds = _stems(list_images(pd), "prediction")
    gts = _stems(list_images(gd), "GT")
    if not gts:
        raise UserError(f"no images in GT folder {gd}")
    missing = sorted(set(gts) - set(preds))
    extra = sorted(set(preds) - set(gts))
    if missing or extra:
        msg = []
        if missing:
            msg.append(f"{len(missing)} GT image(s) without prediction in {pd}: {_few(missing)}")
        if extra:
            msg.append(f"{len(extra)} prediction(s) without GT in {gd}: {_few(extra)}")
        raise UserError("; ".join(msg))
    return [(s, preds[s], gts[s]) for s in sorted(gts)]


def load_pair(pred_path: Path, gt_path: Path) -> tuple[np.ndarray, np.ndarray, bool]:
    """(pred uint8 at GT size, GT uint8, resized?)."""
    gt = read_gray_u8(gt_path)
    pred = read_gray_u8(pred_path)
    resized = pred.shape != gt.shape
    if resized:
        pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
    return pred, gt, resized


_WORKER_CACHE: dict[str, SkeletonCache] = {}


def score_files(pred_path: str | os.PathLike, gt_path: str | os.PathLike,
                metrics: Sequence[str] = AGGREGATE_KEYS,
                cache: SkeletonCache | None = None) -> tuple[dict, bool]:
    """Per-image record of one prediction/GT file pair and whether the prediction was resized.

    With a cache, the GT file is looked up by the hash of its bytes (:meth:`SkeletonCache.get_file`): a hit
    gives the binarised GT and its skeleton without decoding the GT image.
    """
    if cache is None:
        pred, gt, resized = load_pair(Path(pred_path), Path(gt_path))
        return evaluate_pair(pred, gt, metrics), resized

    def decode(data: bytes) -> np.ndarray:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
        if img is None:
            raise ImageReadError(f"cannot decode image: {gt_path}")
        return img

    if not Path(gt_path).is_file():
        raise ImageReadError(f"file not found: {gt_path}")
    g, ske = cache.get_file(gt_path, decode)
    pred = read_gray_u8(pred_path)
    resized = pred.shape != g.shape
    if resized:
        pred = cv2.resize(pred, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_LINEAR)
    return evaluate_pair(pred, g, metrics, skeleton=ske), resized


def _score_one(task: tuple[str, str, str, tuple[str, ...], str | None]) -> tuple[str, dict, bool]:
    stem, pred_path, gt_path, metrics, cache_dir = task
    cache = None
    if cache_dir is not None:
        cache = _WORKER_CACHE.setdefault(cache_dir, SkeletonCache(cache_dir))
    rec, resized = score_files(pred_path, gt_path, metrics, cache)
    return stem, rec, resized


def default_workers(n_images: int) -> int:
    """Processes (the caller included) for ``workers=0``: 1 for small sets, else the CPU count (<= 8)."""
    if n_images < 16:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def evaluate_folders(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    workers: int = 0,
    skeleton_cache: str | os.PathLike | None = None,
    metrics: Sequence[str] = AGGREGATE_KEYS,
    progress: bool = True,
    meta: dict | None = None,
) -> dict:
    """Score every prediction in ``pred_dir`` against ``gt_dir``; returns the eval JSON document (a dict).

    ``workers``: processes in all, this one included (0 = :func:`default_workers`). Keys: ``schema``,
    ``dataset`` (aggregates + ``n_images``, ``S_undefined``), ``per_image`` (stem → scalars), ``curves``
    (dataset-mean curves, ``[256]`` lists), ``state`` (:meth:`DISMetrics.state_dict` without per-image
    records: sums that let splits be pooled exactly), ``meta``.
    """
    pairs = pair_folders(pred_dir, gt_dir)
    n_workers = default_workers(len(pairs)) if workers <= 0 else workers
    metrics = tuple(metrics)
    cache_dir = None if skeleton_cache is None else str(Path(skeleton_cache))
    tasks = [(s, str(p), str(g), metrics, cache_dir) for s, p, g in pairs]
    acc = DISMetrics(metrics=metrics)
    resized: list[str] = []
    t0 = time.perf_counter()
    bar = tqdm(total=len(tasks), unit="img", desc="eval", disable=not progress, leave=False)
    try:
        if n_workers == 1:
            results = map(_score_one, tasks)
            for stem, rec, rs in results:
                acc.add_record(rec, stem)
                resized += [stem] if rs else []
                bar.update(1)
        else:
            # the pool boots (~0.2 s) while this process already scores images from the front
            with process_pool(n_workers - 1, preload=["pdfnet.metrics.folders"]) as ex:
                for stem, rec, rs in map_shared(_score_one, tasks, ex):
                    acc.add_record(rec, stem)
                    resized += [stem] if rs else []
                    bar.update(1)
    finally:
        bar.close()
    doc = result_document(acc)
    doc["meta"].update({
        "pred_dir": str(pred_dir), "gt_dir": str(gt_dir), "resized": resized, "n_resized": len(resized),
        "workers": n_workers, "time_s": round(time.perf_counter() - t0, 3),
    })
    if meta:
        doc["meta"].update(meta)
    return doc


def result_document(acc: DISMetrics) -> dict:
    """The eval JSON document for an accumulator (NaN → ``None`` so the JSON stays strict)."""
    state = acc.state_dict()
    state.pop("per_image")
    curves = {k: v.tolist() for k, v in acc.curves().items()}
    return {
        "schema": RESULT_SCHEMA,
        "dataset": json_safe(acc.compute()),
        "per_image": json_safe(acc.per_image),
        "curves": curves,
        "state": state,
        "meta": {"protocol": PROTOCOL, "versions": versions()},
    }


def versions() -> dict[str, str | None]:
    """Library versions that the numbers depend on (:func:`pdfnet.utils.provenance.package_versions`)."""
    return {"python": platform.python_version(),
            **package_versions(("numpy", "scipy", "opencv-python-headless"))}


def json_safe(x: Any) -> Any:
    """``x`` with numpy scalars as Python numbers and non-finite floats as None (strict JSON)."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x
