"""Image I/O shared by data, depth, metrics and inference.

All readers raise :class:`ImageReadError` (a :class:`~pdfnet.errors.UserError`) naming the file when
it is missing or cannot be decoded, so callers can report it by name. All writers are atomic: they
encode in memory, write a temp file in the destination folder, then ``os.replace`` it, so an
interrupted run never leaves a truncated image behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pdfnet.errors import ImageReadError, UserError
from pdfnet.utils.atomic import atomic_write_bytes

IMAGE_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Video containers ``pdfnet predict`` hands to OpenCV's video reader (FFmpeg backend).
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v")


def list_images(folder: str | os.PathLike, exts: Iterable[str] = IMAGE_EXTS) -> list[Path]:
    """Sorted image files directly inside ``folder`` (case-insensitive extensions, no hidden files)."""
    exts = tuple(e.lower() for e in exts)
    folder = Path(folder)
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts
    )


def _decode(path: str | os.PathLike, flags: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"file not found: {path}")
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:  # vanished, permission, I/O error: name the file
        raise ImageReadError(f"cannot read image ({e.strerror or e}): {path}") from None
    img = cv2.imdecode(buf, flags) if buf.size else None
    if img is None:
        raise ImageReadError(f"cannot decode image (corrupt or unsupported format): {path}")
    return img


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image as RGB uint8 ``[H, W, 3]``.

    Decodes like ``cv2.imread`` (what the release used): EXIF orientation is applied, grayscale is
    replicated to 3 channels, an alpha channel is dropped and 16-bit images are reduced to 8 bits.
    """
    img = _decode(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_gray(path: str | os.PathLike, keep_16bit: bool = False) -> np.ndarray:
    """Read a single-channel map ``[H, W]`` (uint8, or uint16 when stored so and ``keep_16bit``).

    Colour files are converted with OpenCV's BGR→GRAY weights (what the release's loader does).
    """
    img = _decode(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        img = cv2.cvtColor(img, code)
    if img.dtype == np.uint16 and not keep_16bit:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"unsupported image dtype {img.dtype}: {path}")
    return img


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """The alpha channel of an RGBA image as uint8 ``[H, W]`` (16-bit alpha reduced to 8 bits).

    Raises:
        ImageReadError: unreadable, or the image has no alpha channel.
    """
    img = _decode(path, cv2.IMREAD_UNCHANGED)
    if img.ndim != 3 or img.shape[2] != 4:
        raise ImageReadError(f"image has no alpha channel (needed as its mask): {path}")
    a = img[:, :, 3]
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(a)


def has_alpha(path: str | os.PathLike) -> bool:
    """Whether an image file has an alpha channel, from its header (False when it cannot be opened)."""
    try:
        with Image.open(path) as im:
            return im.mode in ("RGBA", "LA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
    except (OSError, ValueError, SyntaxError):
        return False


def read_gray_float(path: str | os.PathLike) -> np.ndarray:
    """Read an 8- or 16-bit single-channel map as float32 in [0, 1] ``[H, W]``."""
    img = read_gray(path, keep_16bit=True)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return img.astype(np.float32) / scale


def write_image(path: str | os.PathLike, img: np.ndarray, rgb: bool = True) -> Path:
    """Atomically write ``img`` (uint8/uint16; ``[H,W]``, ``[H,W,3]`` RGB or ``[H,W,4]`` RGBA).

    The format follows the extension (``.png`` recommended; 16-bit needs PNG/TIFF).
    """
    path = Path(path)
    if img.ndim == 3 and rgb:
        code = cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR
        img = cv2.cvtColor(img, code)
    ok, buf = cv2.imencode(path.suffix.lower() or ".png", img)
    if not ok:
        raise UserError(f"cannot encode image for {path}")
    return atomic_write_bytes(path, buf.tobytes())
