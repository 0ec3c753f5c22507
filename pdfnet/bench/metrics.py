"""``pdfnet bench metrics``: time the full DIS protocol, ours vs PySODMetrics + the official HCE, same values.

Per image, interleaved (so machine-load drift hits both sides alike), each timed from reading the two PNGs
to the last metric:

* ``baseline``: PySODMetrics 1.6.2 ``Fmeasure``, ``Emeasure``, ``MAE``, ``Smeasure``, ``WeightedFmeasure`` +
  the official IS-Net HCE with scikit-image's skeleton computed online
  (:class:`pdfnet.bench.reference.ReferenceEvaluator`);
* ``ours_cold``: :func:`pdfnet.metrics.folders.score_files` (what ``pdfnet eval`` runs per image), every
  metric, with an *empty* GT cache (it decodes and skeletonises the GT and writes the cache entry: what a
  first run pays);
* ``ours_cached``: the same with that cache populated (every later run on the same GT files: the binarised
  GT and its skeleton come from the cache, keyed by the GT file's content hash);
* ``baseline_cached`` (optional): the baseline with precomputed skeletons (the official script's
  ``gt_ske_root``), for a like-for-like cached comparison.

Ratios are baseline / ours in wall time (``time.perf_counter``) and process CPU time. Values are checked:
every aggregate's max abs difference and the number of images whose HCE parts agree exactly.

Then what ``pdfnet eval --pred-dir --gt-dir`` runs is timed as a whole (``eval``):
:func:`~pdfnet.metrics.folders.evaluate_folders` with its processes (``workers``, the caller included; 0 = the
CLI's automatic choice), once with an empty skeleton cache (``cold``) and once with the cache that run filled
(``cached``), against the baseline's wall time; its aggregates are checked against the baseline's too. The
worker pool's machinery (a forkserver that imports the metrics once, ~0.2 s) is started before the rounds and
reported as ``pool_startup_s``: a once-per-process cost like the interpreter start and the imports, which
neither side's timing includes; each eval run still starts its own pool from it.

A *round* is the per-image pass followed by the two eval runs; with ``repeat`` rounds every time is the
minimum over the rounds (noise on a shared machine only ever adds time), so the ratios are reproducible.

:func:`synthetic_dataset` writes a DIS-like synthetic set (the objects of ``pdfnet synth``: wires, meshes,
trees, solids with holes, wheels, mixtures; predictions blurred / noisy / shifted / low-res /
range-compressed) for benchmarks at larger sizes.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pdfnet.bench.reference import ReferenceEvaluator
from pdfnet.data.synth import OBJECT_KINDS, object_mask
from pdfnet.errors import UserError
from pdfnet.metrics.dis import DISMetrics
from pdfnet.metrics.folders import (
    default_workers,
    evaluate_folders,
    pair_folders,
    read_gray_u8,
    score_files,
    versions,
)
from pdfnet.metrics.record import AGGREGATE_KEYS
from pdfnet.metrics.skeleton import SkeletonCache
from pdfnet.utils.io import write_image
from pdfnet.utils.parallel import process_pool

# ---------------------------------------------------------------------------------------------------
# synthetic DIS-like data


def synthetic_pair(rng: np.random.Generator, h: int, w: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One DIS-like ``(gt_u8, pred_u8)`` pair of size ``h x w``: the GT is an object of the synthetic
    dataset (:func:`pdfnet.data.synth.object_mask`, ``kind`` in its ``OBJECT_KINDS``), the prediction a
    blurred / noisy / shifted / low-res / range-compressed version of it with spurious blobs and holes."""
    gt = object_mask(rng, kind, h, w)
    f = gt.astype(np.float32) / 255
    mode = rng.integers(0, 4)
    if mode == 0:
        f = cv2.GaussianBlur(f, (0, 0), float(rng.uniform(0.8, 3)))
    elif mode == 1:
        f = cv2.GaussianBlur(f, (0, 0), 1.0) + rng.normal(0, 0.08, f.shape).astype(np.float32)
    elif mode == 2:
        sx, sy = rng.uniform(-2, 2, 2)
        f = cv2.warpAffine(f, np.float32([[1, 0, sx], [0, 1, sy]]), (w, h), flags=cv2.INTER_LINEAR)
    else:
        small = cv2.resize(f, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
        f = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    for _ in range(int(rng.integers(0, 4))):  # spurious blobs and erased patches
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        cv2.circle(f, c, int(rng.uniform(0.01, 0.04) * min(h, w)), float(rng.integers(0, 2)), -1)
    f = np.clip(f, 0, 1)
    if rng.random() < 0.3:  # range-compressed prediction
        lo, hi = sorted(rng.uniform(0.05, 0.95, 2))
        f = lo + (hi - lo) * f
    return gt, (f * 255).astype(np.uint8)


def synthetic_dataset(out: str | os.PathLike, n: int, size: tuple[int, int] = (1024, 1280),
                      seed: int = 0) -> tuple[Path, Path]:
    """Write ``n`` synthetic pairs to ``<out>/gt`` and ``<out>/pred``; returns ``(pred_dir, gt_dir)``."""
    out = Path(out)
    kinds = OBJECT_KINDS
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        gt, pred = synthetic_pair(rng, size[0], size[1], kinds[i % len(kinds)])
        write_image(out / "gt" / f"syn{i:04d}_{kinds[i % len(kinds)]}.png", gt)
        write_image(out / "pred" / f"syn{i:04d}_{kinds[i % len(kinds)]}.png", pred)
    return out / "pred", out / "gt"


# ---------------------------------------------------------------------------------------------------
# runner


class _Clock:
    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> _Clock:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c

    @staticmethod
    def best(clocks: Iterable[_Clock]) -> _Clock:
        """A clock holding the minimum wall and the minimum CPU time of ``clocks``."""
        clocks = list(clocks)
        out = _Clock()
        out.wall = min(c.wall for c in clocks)
        out.cpu = min(c.cpu for c in clocks)
        return out

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 4), "cpu_s": round(self.cpu, 4)}


def _ratio(a: _Clock, b: _Clock) -> dict[str, float]:
    return {"wall": round(a.wall / max(b.wall, 1e-12), 2), "cpu": round(a.cpu / max(b.cpu, 1e-12), 2)}


def run_benchmark(
    pred_dir: str | os.PathLike,
    gt_dir: str | os.PathLike,
    baseline_cached: bool = True,
    workers: int = 0,
    progress: bool = True,
    repeat: int = 3,
) -> dict:
    """Time baseline vs ours on a prediction/GT folder pair (see the module docstring); JSON-able result.

    ``workers``: processes of the timed ``pdfnet eval`` run, the caller included (0 = automatic, as the CLI).
    ``repeat`` rounds are run (each: the interleaved per-image pass, then the eval runs); every timing
    reported is its minimum over the rounds (the least disturbed one, on a shared machine), ratios are taken
    between those minima, and ``rounds`` keeps the raw numbers. Values are checked in the first round.
    """
    if repeat < 1:
        raise ValueError("repeat must be >= 1")
    pairs = pair_folders(pred_dir, gt_dir)
    n_workers = workers if workers > 0 else default_workers(len(pairs))
    startup = _pool_startup(n_workers) if n_workers > 1 else 0.0
    rounds, first = [], None
    for r in range(repeat):
        clocks, checked = _one_round(pred_dir, gt_dir, pairs, baseline_cached, n_workers, r == 0,
                                     progress and r == 0)
        rounds.append(clocks)
        first = first or checked
    best = {k: _Clock.best(rc[k] for rc in rounds) for k in rounds[0]}
    c_base = best["baseline"]
    out = {
        "n_images": len(pairs), "pixels_mp": first["pixels_mp"], "max_size": first["max_size"],
        "repeat": repeat,
        "baseline": c_base.as_dict(), "ours_cold": best["ours_cold"].as_dict(),
        "ours_cached": best["ours_cached"].as_dict(),
        "ratio_cold": _ratio(c_base, best["ours_cold"]), "ratio_cached": _ratio(c_base, best["ours_cached"]),
        "values": first["values"],
        "versions": versions(), "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                            "opencv_threads": cv2.getNumThreads()},
    }
    if baseline_cached:
        out["baseline_cached"] = best["baseline_cached"].as_dict()
        out["ratio_cached_vs_baseline_cached"] = _ratio(best["baseline_cached"], best["ours_cached"])
    ev_cold, ev_cached = best["eval_cold"].wall, best["eval_cached"].wall
    out["eval"] = {"workers": n_workers, "pool_startup_s": round(startup, 3),
                   "cold_wall_s": round(ev_cold, 3), "cached_wall_s": round(ev_cached, 3),
                   "ratio_cold_wall": round(c_base.wall / ev_cold, 2),
                   "ratio_cached_wall": round(c_base.wall / ev_cached, 2),
                   "max_abs_diff": first["eval_max_abs_diff"]}
    out["rounds"] = [{k: round(c.wall, 4) for k, c in rc.items()} for rc in rounds]
    return out


def _pool_startup(n_workers: int) -> float:
    """Start ``pdfnet eval``'s worker pool machinery once (the forkserver with its imports); seconds taken.

    It is a once-per-process cost like the interpreter start and the imports (excluded on both sides); later
    pools fork from the running server, and that part stays inside the eval timings.
    """
    t0 = time.perf_counter()
    with process_pool(n_workers - 1, preload=["pdfnet.metrics.folders"]) as ex:
        list(ex.map(abs, range(n_workers - 1)))
    return time.perf_counter() - t0


def _one_round(pred_dir, gt_dir, pairs, baseline_cached: bool, n_workers: int, check: bool,
               progress: bool) -> tuple[dict[str, _Clock], dict | None]:
    """One round: the interleaved per-image pass, then ``evaluate_folders`` cold and cached."""
    # scikit-image: a dev extra, needed by this benchmark only
    from skimage.morphology import skeletonize as sk_skeletonize


    names = ["baseline", "ours_cold", "ours_cached", "eval_cold", "eval_cached"]
    clocks = {k: _Clock() for k in names + (["baseline_cached"] if baseline_cached else [])}
    ref = ReferenceEvaluator()
    ref_c = ReferenceEvaluator() if baseline_cached else None
    ours_cold, ours_cached = DISMetrics(), DISMetrics()
    tmp = Path(tempfile.mkdtemp(prefix="pdfnet-bench-"))
    sizes = []
    hce_equal = 0
    curve_diff = 0.0
    try:
        cache = SkeletonCache(tmp / "ske")
        for stem, pp, gp in tqdm(pairs, desc="bench", unit="img", disable=not progress, leave=False):
            with clocks["baseline"]:
                p8, g8 = read_gray_u8(pp), read_gray_u8(gp)
                _check_size(stem, p8, g8)
                ref.update(p8, g8)
            with clocks["ours_cold"]:
                rec_cold, _ = score_files(pp, gp, cache=cache)
            with clocks["ours_cached"]:
                rec, _ = score_files(pp, gp, cache=cache)
            if ref_c is not None:
                ske = sk_skeletonize(g8 > 128)  # the cached skeleton, computed outside the timing
                with clocks["baseline_cached"]:
                    p8, g8 = read_gray_u8(pp), read_gray_u8(gp)
                    ref_c.update(p8, g8, skeleton=ske)
            if check:
                ours_cold.add_record(rec_cold, stem)
                ours_cached.add_record(rec, stem)
                sizes.append(list(g8.shape))
                hce_equal += int(rec["HCE"] == ref.hces[-1])
                for k, mine in (("fm", rec["fm"]), ("em", rec["em"])):
                    theirs = (ref.fm.changeable_fms if k == "fm" else ref.em.changeable_ems)[-1]
                    curve_diff = max(curve_diff, float(np.max(np.abs(np.asarray(theirs) - mine))))
        eval_cache = tmp / "eval-ske"
        with clocks["eval_cold"]:
            evaluate_folders(pred_dir, gt_dir, workers=n_workers, skeleton_cache=eval_cache, progress=False)
        with clocks["eval_cached"]:
            doc = evaluate_folders(pred_dir, gt_dir, workers=n_workers, skeleton_cache=eval_cache,
                                   progress=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not check:
        return clocks, None
    base_vals = ref.compute()
    ours_vals = ours_cached.compute()
    cold_vals = ours_cold.compute()
    eval_vals = {k: (float("nan") if v is None else v) for k, v in doc["dataset"].items()}
    checked = {
        "pixels_mp": round(sum(h * w for h, w in sizes) / 1e6, 3),
        "max_size": max(sizes, key=lambda s: s[0] * s[1]) if sizes else None,
        "values": {"baseline": base_vals, "ours": ours_vals,
                   "max_abs_diff": {k: _absdiff(base_vals[k], ours_vals[k]) for k in AGGREGATE_KEYS},
                   "max_abs_diff_cold": {k: _absdiff(base_vals[k], cold_vals[k]) for k in AGGREGATE_KEYS},
                   "hce_equal_images": hce_equal, "per_image_curve_max_abs_diff": curve_diff},
        "eval_max_abs_diff": {k: _absdiff(base_vals[k], eval_vals[k]) for k in AGGREGATE_KEYS},
    }
    return clocks, checked


def _check_size(stem: str, p8: np.ndarray, g8: np.ndarray) -> None:
    if p8.shape != g8.shape:
        raise UserError(f"bench needs predictions at GT size; {stem}: {p8.shape} vs {g8.shape}")


def _absdiff(a: float, b: float) -> float | None:
    if np.isnan(a) and np.isnan(b):
        return 0.0
    d = abs(a - b)
    return None if np.isnan(d) else float(d)


def _t(c: dict) -> str:
    return f"{c['wall_s']:.2f} s wall, {c['cpu_s']:.2f} s CPU"


def format_summary(res: dict) -> str:
    """Human-readable lines for the CLI."""
    b, c, k = res["baseline"], res["ours_cold"], res["ours_cached"]
    lines = [
        f"{res['n_images']} images, {res['pixels_mp']} MP, largest {res['max_size']}; "
        f"each time is the best of {res['repeat']} round(s)",
        f"baseline (PySOD 1.6.2 + official HCE, one process, online skeletons): {_t(b)}",
    ]
    if "baseline_cached" in res:
        lines.append(f"baseline with precomputed skeletons: {_t(res['baseline_cached'])}")
    e = res["eval"]
    if e["workers"] == 1:
        who = "one process"
    else:
        n_pool = e["workers"] - 1
        pool = f"{n_pool} worker{'s' if n_pool > 1 else ''}"
        who = (f"{e['workers']} processes: the caller + {pool}; the pool's start-up, "
               f"{e['pool_startup_s']:.2f} s once per process, is not included")
    lines += [
        f"pdfnet eval ({who}): cold {e['cold_wall_s']:.2f} s wall, cached skeletons "
        f"{e['cached_wall_s']:.2f} s wall",
        f"  speed-up cold:   {e['ratio_cold_wall']:.1f}x wall",
        f"  speed-up cached: {e['ratio_cached_wall']:.1f}x wall",
        f"per image in one process (interleaved with the baseline): cold {_t(c)}; cached {_t(k)}",
        f"  speed-up cold:   {res['ratio_cold']['wall']:.1f}x wall, {res['ratio_cold']['cpu']:.1f}x CPU",
        f"  speed-up cached: {res['ratio_cached']['wall']:.1f}x wall, {res['ratio_cached']['cpu']:.1f}x CPU",
    ]
    if "ratio_cached_vs_baseline_cached" in res:
        r = res["ratio_cached_vs_baseline_cached"]
        lines.append(f"  speed-up cached vs baseline with precomputed skeletons: {r['wall']:.1f}x wall, "
                     f"{r['cpu']:.1f}x CPU")
    v = res["values"]
    diffs = [*v["max_abs_diff"].items(), *e["max_abs_diff"].items()]
    worst = max((d for _, d in diffs if d is not None), default=0.0)
    nan_keys = sorted({key for key, d in diffs if d is None})
    note = (f" ({', '.join(nan_keys)}: NaN in the baseline, which averages undefined per-image values; ours "
            "skips them)") if nan_keys else ""
    lines.append(f"values: max |ours - baseline| over aggregates = {worst:.3g}{note}; "
                 f"HCE equal on {v['hce_equal_images']}/{res['n_images']} images")
    return "\n".join(lines)


def bench_inputs(pred_dir: str | None, gt_dir: str | None, synthetic: int, size: Sequence[int], seed: int,
                 keep: str | None) -> tuple[Path, Path, Path | None]:
    """Resolve the benchmark inputs: given folders, or a synthetic set (temp dir unless ``keep``)."""
    if pred_dir and gt_dir:
        return Path(pred_dir), Path(gt_dir), None
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="pdfnet-bench-syn-"))
    p, g = synthetic_dataset(root, synthetic, (int(size[0]), int(size[1])), seed)
    return p, g, (None if keep else root)
