"""Folder-level prediction (what ``pdfnet predict`` runs): read, predict in batches, write, report.

Images are predicted ``predictor.batch_size`` at a time; videos (:mod:`pdfnet.inference.video`) one
after the other, their frames batched the same way. A file that cannot be used (corrupt, unsupported,
too small, over the pixel bound, no depth map in ``--depth-dir`` or one of another aspect ratio, a
write error) is reported by name on stderr as soon as it fails; the other files are processed; the
caller turns a non-empty :attr:`PredictReport.failed` into a non-zero exit status. The output folder
is proven writable before the first file is read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from tqdm import tqdm

from pdfnet.data.dis5k import check_depth_aspect
from pdfnet.errors import UserError
from pdfnet.inference.files import DEFAULT_SAVE, check_stems_unique, find_depth, write_outputs
from pdfnet.inference.foreground import DEFAULT_FOREGROUND, Background
from pdfnet.inference.predictor import Prediction, Predictor
from pdfnet.inference.preprocess import to_depth_float, to_rgb_uint8
from pdfnet.inference.video import is_video, predict_video
from pdfnet.utils.fs import check_output_dir
from pdfnet.utils.io import MAX_PIXELS


@dataclass
class PredictReport:
    """Outcome of :func:`predict_files`: written outputs per input, and failures with reasons."""

    done: dict[Path, list[Path]] = field(default_factory=dict)
    failed: dict[Path, str] = field(default_factory=dict)


def predict_files(
    predictor: Predictor,
    inputs: Sequence[Path],
    out_dir: str | os.PathLike,
    *,
    save: Sequence[str] = DEFAULT_SAVE,
    depth_dir: str | os.PathLike | None = None,
    threshold: float = 0.5,
    tta: bool | None = None,
    progress: bool = True,
    log: TextIO | None = None,
    foreground: str | None = DEFAULT_FOREGROUND,
    background: Background | None = None,
    max_pixels: int | None = MAX_PIXELS,
) -> PredictReport:
    """Predict every input file and write the requested outputs into ``out_dir``.

    Args:
        predictor: a ready :class:`Predictor` (with a depth estimator unless ``depth_dir`` is given).
        inputs: image and video files (see :func:`pdfnet.inference.files.collect_inputs`); stems must
            be unique.
        out_dir: output folder (created); outputs are named as documented in :mod:`pdfnet.inference.files`.
        save: output kinds.
        depth_dir: read depth maps ``<stem>.<ext>`` from here instead of estimating them.
        threshold: binarisation threshold of the ``mask`` output.
        tta: override the predictor's TTA default.
        progress: show a tqdm bar (on stderr).
        log: where failures are reported (default stderr).
        foreground: foreground-colour method of cut-outs/composites (None = the raw input RGB).
        background: new background of the ``composite`` output.
        max_pixels: images (and depth maps) with more pixels are skipped before decoding (None/0: no
            bound).

    Returns:
        A :class:`PredictReport`.
    """
    log = log or sys.stderr
    out = Path(out_dir)
    if depth_dir is not None and not Path(depth_dir).is_dir():
        raise UserError(f"--depth-dir {depth_dir} is not a folder")
    check_stems_unique(inputs)
    check_output_dir(out, "--output")
    protected = {p.resolve() for p in inputs}
    report = PredictReport()
    videos = [p for p in inputs if is_video(p)]
    images = [p for p in inputs if not is_video(p)]
    bar = tqdm(total=len(images), unit="img", desc="predict", disable=not progress or not images,
               file=sys.stderr)

    def fail(path: Path, msg: str) -> None:
        report.failed[path] = msg
        tqdm.write(f"pdfnet predict: skipped {path}: {msg}", file=log)
        if not is_video(path):  # videos have a bar of their own (frames)
            bar.update(1)

    try:
        for start in range(0, len(images), predictor.batch_size):
            paths, rgbs, depths = [], [], []
            for path in images[start:start + predictor.batch_size]:
                try:
                    rgb = to_rgb_uint8(path, max_pixels=max_pixels)
                    depth = (_read_depth(depth_dir, path, rgb.shape[:2], max_pixels)
                             if depth_dir is not None else None)
                except UserError as e:
                    fail(path, _strip_path(str(e), path))
                    continue
                paths.append(path)
                rgbs.append(rgb)
                depths.append(depth)
            if not paths:
                continue
            preds = _predict_batch(predictor, paths, rgbs, None if depth_dir is None else depths, tta, fail)
            for path, rgb, pred in zip(paths, rgbs, preds):
                if pred is None:
                    continue
                try:
                    report.done[path] = write_outputs(out, path.stem, rgb, pred.prob, save, depth=pred.depth,
                                                      threshold=threshold, protected=protected,
                                                      foreground=foreground, background=background)
                except (UserError, OSError) as e:
                    fail(path, str(e))
                    continue
                bar.update(1)
    finally:
        bar.close()
    for path in videos:
        try:
            if depth_dir is not None:
                raise UserError("--depth-dir is not supported for videos (depth is estimated per frame)")
            report.done[path] = predict_video(predictor, path, out, save=save, threshold=threshold, tta=tta,
                                              foreground=foreground, background=background,
                                              progress=progress, protected=protected)
        except (UserError, OSError) as e:
            fail(path, _strip_path(str(e), path))
    return report


def _predict_batch(
    predictor: Predictor,
    paths: list[Path],
    rgbs: list[np.ndarray],
    depths: list[np.ndarray] | None,
    tta: bool | None,
    fail: Callable[[Path, str], None],
) -> list[Prediction | None]:
    """Predict one batch; when it fails, retry one image at a time so failures are named (None)."""
    try:
        return predictor.predict_arrays(rgbs, depths, tta=tta)
    except UserError as err:
        if len(paths) == 1:
            fail(paths[0], str(err))
            return [None]
    preds: list[Prediction | None] = []
    for i, path in enumerate(paths):
        try:
            preds.extend(predictor.predict_arrays(rgbs[i:i + 1], None if depths is None else depths[i:i + 1],
                                                  tta=tta))
        except UserError as e:
            fail(path, str(e))
            preds.append(None)
    return preds


def _read_depth(depth_dir: str | os.PathLike, path: Path, image_hw: tuple[int, int],
                max_pixels: int | None) -> np.ndarray:
    dpath = find_depth(depth_dir, path.stem)
    if dpath is None:
        raise UserError(f"no depth map named {path.stem}.<ext> in {depth_dir}")
    depth = to_depth_float(dpath, max_pixels=max_pixels)
    check_depth_aspect(depth.shape, image_hw, f"depth map {dpath}", "the image")
    return depth


def _strip_path(msg: str, path: Path) -> str:
    """Drop a leading/trailing copy of ``path`` from a reader's message (the caller prints it)."""
    for s in (f": {path}", f"{path}: "):
        msg = msg.replace(s, "")
    return msg
