"""Image I/O shared by data, depth, metrics and inference.

All readers raise :class:`ImageReadError` (a :class:`~pdfnet.errors.UserError`) naming the file when
it is missing or cannot be decoded, so callers can report it by name. Readers are bounded: before any
pixel is decoded, the size in the file header is checked against ``max_pixels`` (default
:data:`MAX_PIXELS`, 100 megapixels, PIL's decompression-bomb idea) and a file too large to be an
image within that bound is refused without reading it (:class:`ImageTooLargeError`). All writers are
atomic (:func:`pdfnet.utils.atomic.atomic_open`): they encode in memory, write a temp file in the
destination folder, then ``os.replace`` it, so an interrupted run never leaves a truncated image
behind; :func:`atomic_write_many` writes a set of files all or none.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pdfnet.errors import ImageReadError, ImageTooLargeError, UserError
from pdfnet.utils.atomic import atomic_write_bytes, replace_all

IMAGE_EXTS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Video containers ``pdfnet predict`` hands to OpenCV's video reader (FFmpeg backend).
VIDEO_EXTS: tuple[str, ...] = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v")


#: Default bound on an image's pixel count (width × height) for every reader: 100 MP (PIL warns at
#: 89 MP). A 20000 × 20000 PNG can be a few hundred KB on disk and 1.2 GB decoded.
MAX_PIXELS: int = 100_000_000

#: Formats whose EXIF orientation OpenCV applies when decoding colour images (``read_rgb``).
_EXIF_ROTATED_FORMATS = frozenset({"JPEG", "MPO", "PNG"})


def list_images(folder: str | os.PathLike, exts: Iterable[str] = IMAGE_EXTS) -> list[Path]:
    """Sorted image files directly inside ``folder`` (case-insensitive extensions, no hidden files)."""
    exts = tuple(e.lower() for e in exts)
    folder = Path(folder)
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts
    )


def _header(path: str | os.PathLike) -> tuple[int, int, bool] | int | None:
    """``(H, W, rotated)`` from the header, the pixel count alone when PIL refuses the file as a
    decompression bomb (its message carries it), or None when PIL cannot parse the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's own decompression-bomb warning
            with Image.open(path) as im:
                w, h = im.size
                turn = im.format in _EXIF_ROTATED_FORMATS and im.getexif().get(0x0112) in (5, 6, 7, 8)
    except Image.DecompressionBombError as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        return int(m.group(1)) if m else None
    except Exception:  # noqa: BLE001 - PIL cannot parse it: size unknown, the decoder has the last word
        return None
    return int(h), int(w), bool(turn)


def header_size(path: str | os.PathLike, oriented: bool = True) -> tuple[int, int] | None:
    """``(H, W)`` from the file header without decoding pixels, or None when it cannot be read.

    ``oriented``: as :func:`read_rgb` returns the image, i.e. with the EXIF orientation applied
    (sides swapped for a 90° rotation) for the formats OpenCV rotates.
    """
    head = _header(path)
    if not isinstance(head, tuple):
        return None
    h, w, turn = head
    return (w, h) if oriented and turn else (h, w)


def check_image_bounds(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> None:
    """Refuse, before decoding, an image over ``max_pixels`` (None or 0: no bound).

    The header size is used when readable; otherwise the file size must be within what an
    uncompressed 16-bit RGBA image of ``max_pixels`` could take (so a huge or sparse file that is not
    a parseable image is never read into memory).

    Raises:
        ImageTooLargeError: naming the file, its size and the bound.
    """
    if not max_pixels:
        return
    path = Path(path)
    head = _header(path)
    if head is not None:
        n = head if isinstance(head, int) else head[0] * head[1]
        if n > max_pixels:
            dims = "" if isinstance(head, int) else f"{head[1]}x{head[0]} = "
            raise ImageTooLargeError(
                f"image is {dims}{n / 1e6:.0f} MP, over the bound of {max_pixels / 1e6:g} MP (raise it "
                f"with --max-pixels if this image is wanted): {path}")
        return
    size = path.stat().st_size
    if size > 8 * max_pixels + (1 << 20):
        raise ImageTooLargeError(
            f"file is {size / 2**30:.1f} GiB, larger than any image within the bound of "
            f"{max_pixels / 1e6:g} MP: {path}")


def _decode(path: str | os.PathLike, flags: int, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"file not found: {path}")
    check_image_bounds(path, max_pixels)
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as e:  # vanished, permission, I/O error: name the file
        raise ImageReadError(f"cannot read image ({e.strerror or e}): {path}") from None
    img = cv2.imdecode(buf, flags) if buf.size else None
    if img is None:
        raise ImageReadError(f"cannot decode image (corrupt or unsupported format): {path}")
    return img


def read_rgb(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read an image as RGB uint8 ``[H, W, 3]``.

    Decodes like ``cv2.imread`` (what the release used): EXIF orientation is applied, grayscale is
    replicated to 3 channels, an alpha channel is dropped and 16-bit images are reduced to 8 bits.
    Images over ``max_pixels`` are refused before decoding (:class:`ImageTooLargeError`).
    """
    img = _decode(path, cv2.IMREAD_COLOR, max_pixels)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_gray(path: str | os.PathLike, keep_16bit: bool = False,
              max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read a single-channel map ``[H, W]`` (uint8, or uint16 when stored so and ``keep_16bit``).

    Colour files are converted with OpenCV's BGR→GRAY weights (what the release's loader does).
    Maps over ``max_pixels`` are refused before decoding (:class:`ImageTooLargeError`).
    """
    img = _decode(path, cv2.IMREAD_UNCHANGED, max_pixels)
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


def read_gray_float(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read an 8- or 16-bit single-channel map as float32 in [0, 1] ``[H, W]``."""
    img = read_gray(path, keep_16bit=True, max_pixels=max_pixels)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    return img.astype(np.float32) / scale


def atomic_write_many(files: Mapping[str | os.PathLike, bytes]) -> list[Path]:
    """Write a set of files all or none (:func:`pdfnet.utils.atomic.replace_all`)."""
    return replace_all({Path(k): v for k, v in files.items()})


def encode_image(img: np.ndarray, ext: str = ".png", rgb: bool = True) -> bytes:
    """Encode ``img`` (uint8/uint16; ``[H,W]``, ``[H,W,3]`` RGB or ``[H,W,4]`` RGBA) as ``ext``."""
    if img.ndim == 3 and rgb:
        code = cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR
        img = cv2.cvtColor(img, code)
    ok, buf = cv2.imencode(ext.lower() or ".png", img)
    if not ok:
        raise UserError(f"cannot encode image as {ext}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, img: np.ndarray, rgb: bool = True) -> Path:
    """Atomically write ``img`` (uint8/uint16; ``[H,W]``, ``[H,W,3]`` RGB or ``[H,W,4]`` RGBA).

    The format follows the extension (``.png`` recommended; 16-bit needs PNG/TIFF).
    """
    path = Path(path)
    try:
        data = encode_image(img, path.suffix or ".png", rgb)
    except UserError:
        raise UserError(f"cannot encode image for {path}") from None
    return atomic_write_bytes(path, data)
