"""Exact fast Zhang-Suen skeletons (bit-identical to ``skimage.morphology.skeletonize`` 2-D), disk cache.

scikit-image's 2-D ``skeletonize`` is a parallel thinning with two alternating sub-iterations: every
foreground pixel's 8-neighbourhood code (NW=1, N=2, NE=4, E=8, SE=16, S=32, SW=64, W=128; outside the
image is background) indexes a 256-entry table whose entry 1 / 2 / 3 means "removable in the first /
second / both sub-iterations"; all removals of a sub-iteration are decided on the image as it was at
its start. It rescans the whole image every sub-iteration, so a solid object of thickness T costs
~T full-image scans (seconds on DIS-sized masks).

:func:`skeletonize` runs the same sub-iterations but only evaluates pixels whose decision can have
changed: at the first sub-iteration of each kind, all foreground pixels that touch the background
(interior pixels are never removable); afterwards only foreground neighbours of the pixels removed
since the last sub-iteration of the same kind. A pixel whose neighbourhood is unchanged gets the same
table answer as before, so the result is identical; the work is proportional to the object area plus
the skeleton length per sub-iteration.

:class:`SkeletonCache` stores skeletons on disk keyed by a hash of the binarised GT content (not the
file name), so it is safe to share between runs, datasets and processes; writes are atomic.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pdfnet.utils.atomic import atomic_write_bytes

# scikit-image's Zhang-Suen lookup table (0 keep, 1 first sub-iteration, 2 second, 3 both)
_LUT = np.array([
    0, 0, 0, 1, 0, 0, 1, 3, 0, 0, 3, 1, 1, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 3, 0, 3, 3,
    0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 2, 2,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 2, 0,
    0, 0, 3, 1, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 1, 3, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 0, 1, 0, 0, 0, 0, 2, 2, 0, 0, 2, 0, 0, 0,
], dtype=np.uint8)
_REMOVE = (np.isin(_LUT, (1, 3)), np.isin(_LUT, (2, 3)))

#: version tag mixed into cache keys; bump if the skeleton definition ever changes
SKELETON_VERSION = "zhang-suen-skimage-2d-v1"


#: (dy, dx, code weight) of the 8 neighbours
_NEIGHBOURS = (
    (-1, -1, 1), (-1, 0, 2), (-1, 1, 4), (0, 1, 8), (1, 1, 16), (1, 0, 32), (1, -1, 64), (0, -1, 128),
)


#: code weight under which each neighbour (same order) sees the centre pixel: the opposite direction's weight
_OPPOSITE = np.array([_NEIGHBOURS[(i + 4) % 8][2] for i in range(8)], dtype=np.uint8)

#: 3x3 correlation kernel giving every pixel its neighbourhood code (centre 0)
_CODE_KERNEL = np.zeros((3, 3), dtype=np.float32)
for _dy, _dx, _w in _NEIGHBOURS:
    _CODE_KERNEL[_dy + 1, _dx + 1] = _w


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen skeleton of a boolean mask ``[H, W]``; identical to ``skimage.morphology.skeletonize``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"skeletonize expects a 2-D mask, got shape {mask.shape}")
    hh, ww = mask.shape
    out = np.zeros((hh, ww), dtype=bool)
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0:
        return out
    # outside the bounding box everything is background, exactly like the 1-pixel frame skimage adds
    out[y:y + h, x:x + w] = _skeletonize_crop(mask[y:y + h, x:x + w])
    return out


def _skeletonize_crop(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    row = w + 2
    img = np.zeros((h + 2, row), dtype=np.uint8)
    img[1:-1, 1:-1] = mask
    flat = img.ravel()
    nb = np.array([dy * row + dx for dy, dx, _ in _NEIGHBOURS], dtype=np.intp)
    # neighbourhood code of every foreground pixel (only those are ever evaluated), kept up to date as
    # pixels are removed: the neighbour at offset nb[i] of a removed pixel loses weight _OPPOSITE[i]
    # (one exact 3x3 integer correlation over the padded crop; codes at background pixels are never read)
    cflat = cv2.filter2D(img, cv2.CV_8U, _CODE_KERNEL, borderType=cv2.BORDER_CONSTANT).ravel()
    border0 = np.flatnonzero((cflat != 255) & (flat != 0))

    stamp = np.empty(flat.size, dtype=np.intp)  # scratch for de-duplication
    empty = np.zeros(0, dtype=np.intp)
    # still-foreground neighbours (with repeats) of the previous sub-iteration's removals, as filtered then;
    # together with those of the current removals they are the pixels whose code changed since the last
    # sub-iteration of the same kind
    nbrs_prev = empty
    first_eval = [False, True]
    cand = border0
    k = 0  # 0 = first sub-iteration kind, 1 = second
    idle = 0
    while True:
        rm = cand[_REMOVE[k][cflat[cand]]] if cand.size else cand
        if rm.size:
            flat[rm] = 0
            idle = 0
            nbrs = (rm[:, None] + nb[None, :]).ravel()
            np.subtract.at(cflat, nbrs, np.broadcast_to(_OPPOSITE, (rm.size, 8)).ravel())
            nbrs = nbrs[flat[nbrs] != 0]
        else:
            idle += 1
            if idle >= 2:
                break
            nbrs = empty
        k ^= 1
        if first_eval[k]:
            # first sub-iteration of the second kind: every current border pixel, i.e. the initial border
            # pixels still set plus the foreground neighbours of what the first sub-iteration removed
            first_eval[k] = False
            cand = np.concatenate([border0[flat[border0] != 0], nbrs])
        else:
            # foreground neighbours of the removals of the last two sub-iterations
            cand = np.concatenate([nbrs_prev[flat[nbrs_prev] != 0], nbrs]) if nbrs_prev.size else nbrs
        nbrs_prev = nbrs
        if cand.size:
            # de-duplicate without sorting: keep the last occurrence of every index
            order = np.arange(cand.size, dtype=np.intp)
            stamp[cand] = order
            cand = cand[stamp[cand] == order]
    return img[1:-1, 1:-1].astype(bool)


def mask_key(mask: np.ndarray) -> str:
    """Content hash of a boolean mask (shape + packed bits + skeleton version)."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    hsh = hashlib.sha256()
    hsh.update(f"{SKELETON_VERSION}|{mask.shape[0]}x{mask.shape[1]}|".encode())
    hsh.update(np.packbits(mask).tobytes())
    return hsh.hexdigest()


class SkeletonCache:
    """On-disk cache of GT skeletons, keyed by :func:`mask_key` (content, not file name).

    Files: ``<root>/<key[:2]>/<key>.npy`` holding the int64 flat indices of the skeleton pixels. Writes are
    atomic (temp file + rename), so concurrent runs and worker processes can share one folder; a corrupt or
    mismatching file is ignored and rewritten.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, mask: np.ndarray) -> np.ndarray:
        """Skeleton of ``mask`` (bool ``[H, W]``), from the cache or computed and stored."""
        key = mask_key(mask)
        path = self._path(key)
        h, w = mask.shape
        if path.is_file():
            try:
                idx = np.load(path, allow_pickle=False)
                if idx.ndim == 1 and (idx.size == 0 or (idx.min() >= 0 and idx.max() < h * w)):
                    out = np.zeros(h * w, dtype=bool)
                    out[idx] = True
                    self.hits += 1
                    return out.reshape(h, w)
            except (OSError, ValueError):
                pass
        self.misses += 1
        ske = skeletonize(mask)
        buf = io.BytesIO()
        np.save(buf, np.flatnonzero(ske).astype(np.int64))
        atomic_write_bytes(path, buf.getvalue())
        return ske

    def get_file(self, gt_path: str | os.PathLike,
                 decode: Callable[[bytes], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(foreground mask, skeleton)`` of a GT *file*, keyed by a hash of the file's bytes.

        A hit skips decoding the image: the entry stores the binarised GT (``gt > 128``, packed bits) and its
        skeleton. ``decode(file_bytes) -> uint8 [H, W]`` is called on a miss. Entries are
        ``<root>/<key[:2]>/<key>.gtc``: magic, ``H``, ``W``, skeleton size, packed mask, int64 skeleton
        indices.
        """
        data = Path(gt_path).read_bytes()
        hsh = hashlib.sha256()
        hsh.update(f"{SKELETON_VERSION}|gt-file|".encode())
        hsh.update(data)
        key = hsh.hexdigest()
        path = self.root / key[:2] / f"{key}.gtc"
        if path.is_file():
            try:
                raw = path.read_bytes()
                if raw[:8] == _GTC_MAGIC:
                    h, w, n = (int(v) for v in np.frombuffer(raw, dtype=np.int64, count=3, offset=8))
                    nbytes = (h * w + 7) // 8
                    if len(raw) != _HDR + _pad8(nbytes) + 8 * n:
                        raise ValueError("truncated cache entry")
                    bits = np.frombuffer(raw, dtype=np.uint8, count=nbytes, offset=_HDR)
                    idx = np.frombuffer(raw, dtype=np.int64, count=n, offset=_HDR + _pad8(nbytes))
                    if n == 0 or 0 <= idx.min() <= idx.max() < h * w:
                        mask = np.unpackbits(bits, count=h * w).view(bool).reshape(h, w)
                        ske = np.zeros(h * w, dtype=bool)
                        ske[idx] = True
                        self.hits += 1
                        return mask, ske.reshape(h, w)
            except (OSError, ValueError):
                pass
        self.misses += 1
        gt = decode(data)
        mask = gt > 128
        ske = skeletonize(mask)
        h, w = mask.shape
        idx = np.flatnonzero(ske).astype(np.int64)
        bits = np.packbits(mask)
        body = (_GTC_MAGIC + np.array([h, w, idx.size, 0], dtype=np.int64).tobytes() + bits.tobytes()
                + bytes(_pad8(bits.size) - bits.size) + idx.tobytes())
        atomic_write_bytes(path, body)
        return mask, ske


_GTC_MAGIC = b"PDFGTC01"
_HDR = 8 + 4 * 8  # magic + int64 (H, W, skeleton size, reserved)


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8
