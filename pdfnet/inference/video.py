"""Video prediction: per-frame depth and mask, batched, written as videos (and cut-out frame folders).

Anything OpenCV's FFmpeg backend decodes is accepted (:data:`pdfnet.utils.io.VIDEO_EXTS`: mp4, mov,
avi, webm, mkv, m4v). Frames are streamed (never all in memory), predicted ``predictor.batch_size`` at a
time exactly like images (each frame gets its own pseudo-depth; no temporal smoothing), and written:

============= ================================ ==================================================
kind          output for ``<stem>.<ext>``      content
============= ================================ ==================================================
``mask``      ``<stem>_mask.mp4``              hard mask, white on black
``alpha``     ``<stem>_alpha.mp4``             soft mask
``depth``     ``<stem>_depth.mp4``             the depth fed to the model (per-frame min–max)
``composite`` ``<stem>_composite.mp4``         the foreground on ``--background``
``cutout``    ``<stem>_cutout/NNNNNN.png``     RGBA frames (video codecs carry no alpha), from 000000
============= ================================ ==================================================

Videos keep the input's frame size, frame rate and frame count (MPEG-4 Part 2, ``mp4v``, which
OpenCV's bundled FFmpeg always has; lossy, so a hard mask comes back with a few grey codec pixels —
threshold at 128 to binarise again). Every output is written under a temporary name in ``--output``
and renamed into place only when the whole video succeeded.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pdfnet.errors import UserError
from pdfnet.inference.files import render_outputs
from pdfnet.inference.foreground import DEFAULT_FOREGROUND, Background
from pdfnet.inference.predictor import Predictor
from pdfnet.inference.preprocess import check_min_side
from pdfnet.utils.io import VIDEO_EXTS

#: frame rate written when the input does not state a usable one
FALLBACK_FPS: float = 25.0
_FOURCC = "mp4v"


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video extension (:data:`VIDEO_EXTS`, case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTS


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: frame size, frame rate and (approximate) frame count."""

    width: int
    height: int
    fps: float
    frames: int


def open_video(path: str | os.PathLike) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open ``path`` for reading.

    Raises:
        UserError: missing, or not decodable by OpenCV (one line naming the file).
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"file not found: {p}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise UserError(f"cannot read video (corrupt or unsupported format): {p}")
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = FALLBACK_FPS
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    return cap, VideoInfo(width=w, height=h, fps=fps, frames=max(n, 0))


def read_frames(cap: cv2.VideoCapture, path: Path) -> Iterator[np.ndarray]:
    """Decoded frames as RGB uint8 ``[H, W, 3]`` until the stream ends."""
    while True:
        ok, bgr = cap.read()
        if not ok:
            return
        if bgr is None or bgr.ndim != 3:
            raise UserError(f"cannot decode a frame of video {path}")
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def video_output_paths(out_dir: str | os.PathLike, stem: str, kinds: Sequence[str]) -> dict[str, Path]:
    """``{kind: path}``: ``<stem>_<kind>.mp4`` per video kind, the folder ``<stem>_cutout`` for cutout."""
    return {k: Path(out_dir) / (f"{stem}_cutout" if k == "cutout" else f"{stem}_{k}.mp4") for k in kinds}


class _Outputs:
    """The open writers of one video: temp files/folder in ``out_dir``, renamed into place by ``commit``."""

    def __init__(self, out_dir: Path, stem: str, kinds: Sequence[str], info: VideoInfo,
                 protected: set[Path] | None = None) -> None:
        self.final = video_output_paths(out_dir, stem, kinds)
        for p in self.final.values():
            if protected and p.resolve() in protected:
                raise UserError(f"refusing to overwrite input file {p}")
        self.tmp: dict[str, Path] = {}
        self.writers: dict[str, cv2.VideoWriter] = {}
        self.frame = 0
        try:
            for kind, path in self.final.items():
                if kind == "cutout":
                    self.tmp[kind] = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{path.name}.",
                                                           suffix=".tmp"))
                    continue
                fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.stem}.", suffix=".tmp.mp4")
                os.close(fd)
                self.tmp[kind] = Path(tmp)
                w = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*_FOURCC), info.fps,
                                    (info.width, info.height), True)
                if not w.isOpened():
                    raise UserError(f"cannot open a video writer for {path} ({_FOURCC}, "
                                    f"{info.width}x{info.height} @ {info.fps:g} fps)")
                self.writers[kind] = w
        except BaseException:
            self.abort()
            raise

    def write(self, images: dict[str, np.ndarray]) -> None:
        """Append one frame's outputs (uint8 gray ``[H, W]``, RGB ``[H, W, 3]`` or RGBA for cutout)."""
        for kind, img in images.items():
            if kind == "cutout":
                ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA))
                if not ok:
                    raise UserError(f"cannot encode cut-out frame {self.frame}")
                (self.tmp[kind] / f"{self.frame:06d}.png").write_bytes(buf.tobytes())  # a temp folder
            else:
                code = cv2.COLOR_GRAY2BGR if img.ndim == 2 else cv2.COLOR_RGB2BGR
                self.writers[kind].write(cv2.cvtColor(img, code))
        self.frame += 1

    def commit(self) -> list[Path]:
        for w in self.writers.values():
            w.release()
        self.writers.clear()
        for kind, final in self.final.items():
            tmp = self.tmp.pop(kind)
            if kind == "cutout" and final.exists():
                old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
                os.replace(final, old / final.name)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        return list(self.final.values())

    def abort(self) -> None:
        for w in self.writers.values():
            w.release()
        self.writers.clear()
        for tmp in self.tmp.values():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        self.tmp.clear()


def predict_video(
    predictor: Predictor,
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    save: Sequence[str],
    threshold: float = 0.5,
    tta: bool | None = None,
    foreground: str | None = DEFAULT_FOREGROUND,
    background: Background | None = None,
    progress: bool = True,
    protected: set[Path] | None = None,
) -> list[Path]:
    """Predict every frame of one video and write the outputs of ``save`` (see the module docstring).

    Args:
        predictor: a :class:`pdfnet.inference.Predictor` with a depth estimator.
        path: the video file.
        out_dir: existing output folder.
        save: output kinds (:data:`pdfnet.inference.files.OUTPUT_KINDS`).
        threshold: binarisation threshold of ``mask``.
        tta: override the predictor's TTA default.
        foreground, background: as :func:`pdfnet.inference.files.render_outputs`.
        progress: a tqdm bar counting frames (its rate is frames/s).
        protected: resolved paths that must never be written (the inputs).

    Returns:
        The written paths (videos, and the cut-out frame folder).

    Raises:
        UserError: unreadable video, no frames, a frame too small, or a writer that cannot be opened;
            nothing is left behind for this video then.
    """
    path = Path(path)
    cap, info = open_video(path)
    outs: _Outputs | None = None
    bar = tqdm(total=info.frames or None, unit="frame", desc=path.name, disable=not progress,
               file=sys.stderr, leave=False)
    try:
        check_min_side(info.height, info.width, str(path))
        outs = _Outputs(Path(out_dir), path.stem, save, info, protected)
        batch: list[np.ndarray] = []

        def flush() -> None:
            for rgb, pred in zip(batch, predictor.predict_arrays(batch, tta=tta)):
                outs.write(render_outputs(rgb, pred.prob, save, depth=pred.depth, threshold=threshold,
                                          foreground=foreground, background=background, name=path.name))
            bar.update(len(batch))
            batch.clear()

        for rgb in read_frames(cap, path):
            if rgb.shape[:2] != (info.height, info.width):
                raise UserError(f"video {path}: frame {outs.frame + len(batch)} is {rgb.shape[1]}x"
                                f"{rgb.shape[0]}, the stream said {info.width}x{info.height}")
            batch.append(rgb)
            if len(batch) == predictor.batch_size:
                flush()
        if batch:
            flush()
        if outs.frame == 0:
            raise UserError(f"cannot read video (no decodable frames): {path}")
        return outs.commit()
    except BaseException:
        if outs is not None:
            outs.abort()
        raise
    finally:
        bar.close()
        cap.release()
