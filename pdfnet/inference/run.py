"""Folder-level prediction (what ``pdfnet predict`` runs): read, predict in batches, write, report.

A file that cannot be used (corrupt, unsupported, too small, no depth map in ``--depth-dir``, a write
error) is reported by name on stderr as soon as it fails; the other files are processed; the caller
turns a non-empty :attr:`PredictReport.failed` into a non-zero exit status.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
from tqdm import tqdm

from pdfnet.errors import UserError
from pdfnet.inference.files import DEFAULT_SAVE, check_stems_unique, find_depth, write_outputs
from pdfnet.inference.predictor import Predictor
from pdfnet.inference.preprocess import to_depth_float, to_rgb_uint8


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
) -> PredictReport:
    """Predict every input file and write the requested outputs into ``out_dir``.

    Args:
        predictor: a ready :class:`Predictor` (with a depth estimator unless ``depth_dir`` is given).
        inputs: image files (see :func:`pdfnet.inference.files.collect_inputs`); stems must be unique.
        out_dir: output folder (created); outputs are named as documented in :mod:`pdfnet.inference.files`.
        save: output kinds.
        depth_dir: read depth maps ``<stem>.<ext>`` from here instead of estimating them.
        threshold: binarisation threshold of the ``mask`` output.
        tta: override the predictor's TTA default.
        progress: show a tqdm bar (on stderr).
        log: where failures are reported (default stderr).

    Returns:
        A :class:`PredictReport`.
    """
    log = log or sys.stderr
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {out} exists and is not a folder")
    if depth_dir is not None and not Path(depth_dir).is_dir():
        raise UserError(f"--depth-dir {depth_dir} is not a folder")
    check_stems_unique(inputs)
    out.mkdir(parents=True, exist_ok=True)
    protected = {p.resolve() for p in inputs}
    report = PredictReport()
    bar = tqdm(total=len(inputs), unit="img", desc="predict", disable=not progress, file=sys.stderr)

    def fail(path: Path, msg: str) -> None:
        report.failed[path] = msg
        tqdm.write(f"pdfnet predict: skipped {path}: {msg}", file=log)
        bar.update(1)

    try:
        for start in range(0, len(inputs), predictor.batch_size):
            paths, rgbs, depths = [], [], []
            for path in inputs[start:start + predictor.batch_size]:
                try:
                    rgb = to_rgb_uint8(path)
                    depth = _read_depth(depth_dir, path) if depth_dir is not None else None
                except UserError as e:
                    fail(path, _strip_path(str(e), path))
                    continue
                paths.append(path)
                rgbs.append(rgb)
                depths.append(depth)
            if not paths:
                continue
            try:
                preds = predictor.predict_arrays(rgbs, None if depth_dir is None else depths, tta=tta)
            except UserError as err:
                if len(paths) == 1:
                    fail(paths[0], str(err))
                    continue
                # find the culprit(s): one image at a time, failures reported by name
                preds = []
                for i, path in enumerate(paths):
                    try:
                        preds.extend(predictor.predict_arrays(
                            rgbs[i:i + 1], None if depth_dir is None else depths[i:i + 1], tta=tta))
                    except UserError as e:
                        fail(path, str(e))
                        preds.append(None)
            for path, rgb, pred in zip(paths, rgbs, preds):
                if pred is None:
                    continue
                try:
                    report.done[path] = write_outputs(out, path.stem, rgb, pred.prob, save, depth=pred.depth,
                                                      threshold=threshold, protected=protected)
                except (UserError, OSError) as e:
                    fail(path, str(e))
                    continue
                bar.update(1)
    finally:
        bar.close()
    return report


def _read_depth(depth_dir: str | os.PathLike, path: Path) -> np.ndarray:
    dpath = find_depth(depth_dir, path.stem)
    if dpath is None:
        raise UserError(f"no depth map named {path.stem}.<ext> in {depth_dir}")
    return to_depth_float(dpath)


def _strip_path(msg: str, path: Path) -> str:
    """Drop a leading/trailing copy of ``path`` from a reader's message (the caller prints it)."""
    for s in (f": {path}", f"{path}: "):
        msg = msg.replace(s, "")
    return msg
