"""Files for ``pdfnet predict``: input collection (files, folders, globs), depth lookup, output writing.

Output naming (one file per requested kind, all PNG, all atomically written, in ``--output``):

========== ============================ ========================================================
kind       file                         content
========== ============================ ========================================================
``alpha``  ``<stem>_alpha.png``         soft mask, 8-bit gray ``round(255·p)``: the DIS-style
                                        prediction map that ``pdfnet eval``-style metrics consume
``mask``   ``<stem>_mask.png``          hard mask, 8-bit gray, ``255·[p ≥ threshold]``
``cutout`` ``<stem>_cutout.png``        RGBA: the estimated foreground colours (blur-fusion by
                                        default, see :mod:`pdfnet.inference.foreground`; the raw
                                        input RGB with ``--no-refine-foreground``) with the soft
                                        mask (``alpha``) as alpha
``composite`` ``<stem>_composite.png``  RGB: the foreground placed on ``--background`` (a colour,
                                        ``blur`` or an image)
``depth``  ``<stem>_depth.png``         the depth map that was fed to the model, 8-bit gray,
                                        per-image min–max (near = bright)
========== ============================ ========================================================

Every output carries a suffix, so writing into the input folder can never replace an input; on top of
that, an output path that resolves to an input file is refused, and when a folder is both input and
output, files named like our outputs (``*_mask.png`` …) are not taken as inputs, so a rerun does not
predict its own outputs. An image's outputs are written as a set (all or none: a full disk leaves no
partial set). Files in an input folder without an image extension are counted and reported.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from pdfnet.depth.transforms import to_uint8
from pdfnet.errors import UserError
from pdfnet.inference.foreground import DEFAULT_FOREGROUND, Background, composite, estimate_foreground
from pdfnet.inference.preprocess import prob_to_uint8
from pdfnet.utils.io import IMAGE_EXTS, VIDEO_EXTS, atomic_write_many, encode_image, list_images

OUTPUT_KINDS: tuple[str, ...] = ("mask", "alpha", "cutout", "depth", "composite")
DEFAULT_SAVE: tuple[str, ...] = ("mask", "alpha", "cutout")
_SUFFIX = {"mask": "_mask.png", "alpha": "_alpha.png", "cutout": "_cutout.png", "depth": "_depth.png",
           "composite": "_composite.png"}
_GLOB_CHARS = set("*?[")
_INPUT_EXTS = IMAGE_EXTS + VIDEO_EXTS


def parse_save(spec: str | Iterable[str]) -> tuple[str, ...]:
    """``"mask,alpha"`` → ``("mask", "alpha")``; unknown or empty → :class:`UserError`."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    bad = [s for s in items if s not in OUTPUT_KINDS]
    if bad or not items:
        raise UserError(f"--save: unknown output kind(s) {bad or [spec]}; "
                        f"choose from {', '.join(OUTPUT_KINDS)}")
    return tuple(dict.fromkeys(items))


class InputList(list):
    """The input files (a ``list[Path]``), plus what folders held that is not taken as input."""

    unsupported: list[Path]
    """Files in input folders without an image extension (e.g. ``.gif``, ``.txt``)."""
    own_outputs: list[Path]
    """Files in an input folder that is also the output folder, named like our outputs."""


def is_own_output(name: str) -> bool:
    """True for a file name pdfnet predict produces (``<stem>_mask.png`` …)."""
    return any(name.endswith(suffix) and len(name) > len(suffix) for suffix in _SUFFIX.values())


def collect_inputs(specs: Sequence[str | os.PathLike], output: str | os.PathLike | None = None) -> InputList:
    """Expand files, folders (their images, non-recursive, sorted) and glob patterns into a file list.

    Explicit files are kept whatever their extension (an unsupported one is reported when it fails to
    decode); folders and globs contribute files with an image or video extension (:data:`IMAGE_EXTS`,
    :data:`VIDEO_EXTS`; videos are predicted frame by frame, see :mod:`pdfnet.inference.video`); other
    files of a folder are counted in ``unsupported``. In the ``output`` folder, files named like our
    outputs are skipped (counted in ``own_outputs``). Duplicates are removed, order is kept.

    Raises:
        UserError: a path that does not exist, a glob that matches nothing, or no images at all.
    """
    out: list[Path] = []
    unsupported: list[Path] = []
    own: list[Path] = []
    out_dir = Path(output).resolve() if output is not None else None

    def keep(p: Path) -> bool:
        if out_dir is not None and p.parent.resolve() == out_dir and is_own_output(p.name):
            own.append(p)
            return False
        return True

    for spec in specs:
        s = str(spec)
        p = Path(s)
        if p.is_dir():
            images = list_images(p, _INPUT_EXTS)
            out.extend(f for f in images if keep(f))
            names = {f.name for f in images}
            unsupported += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                                  and f.name not in names)
        elif p.is_file():
            out.append(p)
        elif _GLOB_CHARS & set(s):
            hits = sorted(glob.glob(os.path.expanduser(s), recursive=True))
            files = [Path(h) for h in hits if Path(h).is_file() and Path(h).suffix.lower() in _INPUT_EXTS]
            if not files:
                raise UserError(f"--input: pattern {s!r} matches no image or video files")
            out.extend(f for f in files if keep(f))
        else:
            raise UserError(f"--input: no such file or folder: {s}")
    seen: set[Path] = set()
    uniq = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    if not uniq:
        raise UserError("--input: no images or videos found (supported: " + ", ".join(_INPUT_EXTS) + ")")
    result = InputList(uniq)
    result.unsupported, result.own_outputs = unsupported, own
    return result


def check_stems_unique(paths: Sequence[Path]) -> None:
    """Outputs are named by stem, so two inputs with the same stem would overwrite each other's outputs."""
    by_stem: dict[str, Path] = {}
    for p in paths:
        if p.stem in by_stem:
            raise UserError(f"inputs {by_stem[p.stem]} and {p} share the stem {p.stem!r}, so their outputs "
                            "would collide; predict them into different --output folders")
        by_stem[p.stem] = p


def find_depth(depth_dir: str | os.PathLike, stem: str) -> Path | None:
    """The depth file for ``stem`` in ``depth_dir`` (``<stem>.<image ext>``, PNG preferred), or None."""
    d = Path(depth_dir)
    for ext in (".png", *[e for e in IMAGE_EXTS if e != ".png"]):
        for cand in (d / f"{stem}{ext}", d / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def output_paths(out_dir: str | os.PathLike, stem: str, kinds: Sequence[str]) -> dict[str, Path]:
    """``{kind: <out_dir>/<stem><suffix>}`` for the requested kinds."""
    return {k: Path(out_dir) / f"{stem}{_SUFFIX[k]}" for k in kinds}


def render_outputs(
    rgb: np.ndarray,
    prob: np.ndarray,
    kinds: Sequence[str],
    *,
    depth: np.ndarray | None = None,
    threshold: float = 0.5,
    foreground: str | None = DEFAULT_FOREGROUND,
    background: Background | None = None,
    name: str = "image",
) -> dict[str, np.ndarray]:
    """The requested outputs of one image (or video frame) as uint8 arrays, ``{kind: array}``.

    Args:
        rgb: the input, RGB uint8 ``[H, W, 3]``.
        prob: foreground probability, float ``[H, W]`` in [0, 1] (same ``H × W`` as ``rgb``).
        kinds: subset of :data:`OUTPUT_KINDS`.
        depth: float depth ``[h, w]`` (any size; resized to ``H × W``) — needed for ``depth``.
        threshold: ``mask`` is ``p >= threshold``.
        foreground: foreground-colour method for ``cutout``/``composite``
            (:data:`pdfnet.inference.foreground.FOREGROUND_METHODS`), or None for the raw input RGB.
        background: the new background of ``composite`` (required for it).
        name: how messages name the image.

    Returns:
        ``mask``/``alpha``/``depth`` ``[H, W]``, ``cutout`` RGBA ``[H, W, 4]``, ``composite`` RGB
        ``[H, W, 3]``, all uint8.

    Raises:
        UserError: shapes disagree, or a kind lacks its input (depth map, background).
    """
    if prob.shape != rgb.shape[:2]:
        raise UserError(f"{name}: mask shape {prob.shape} differs from image shape {rgb.shape[:2]}")
    alpha = prob_to_uint8(prob)
    fg = None
    if "cutout" in kinds or "composite" in kinds:
        fg = rgb if foreground is None else estimate_foreground(rgb, prob, method=foreground)
    out: dict[str, np.ndarray] = {}
    for kind in kinds:
        if kind == "alpha":
            out[kind] = alpha
        elif kind == "mask":
            out[kind] = np.where(prob >= threshold, 255, 0).astype(np.uint8)
        elif kind == "cutout":
            out[kind] = np.concatenate([fg, alpha[:, :, None]], axis=2)
        elif kind == "composite":
            if background is None:
                raise UserError(f"{name}: the composite output needs a background (--background)")
            out[kind] = composite(fg, prob, background.render(rgb.astype(np.float32) / 255.0, prob))
        elif kind == "depth":
            if depth is None:
                raise UserError(f"{name}: no depth map available to save")
            out[kind] = to_uint8(_resize_float(depth, rgb.shape[:2]))
        else:
            raise UserError(f"unknown output kind {kind!r}; choose from {', '.join(OUTPUT_KINDS)}")
    return out


def write_outputs(
    out_dir: str | os.PathLike,
    stem: str,
    rgb: np.ndarray,
    prob: np.ndarray,
    kinds: Sequence[str],
    *,
    depth: np.ndarray | None = None,
    threshold: float = 0.5,
    protected: set[Path] | None = None,
    foreground: str | None = DEFAULT_FOREGROUND,
    background: Background | None = None,
) -> list[Path]:
    """Write the requested outputs of one image, all or none (atomic writes), and return their paths.

    Args:
        out_dir: destination folder (created if needed).
        stem: base name of the outputs.
        rgb, prob, kinds, depth, threshold, foreground, background: as :func:`render_outputs`.
        protected: resolved paths that must never be written (the inputs).

    Raises:
        UserError: an output would overwrite a protected file, or :func:`render_outputs` refused.
    """
    paths = output_paths(out_dir, stem, kinds)
    for p in paths.values():
        if protected and p.resolve() in protected:
            raise UserError(f"refusing to overwrite input file {p}")
    images = render_outputs(rgb, prob, kinds, depth=depth, threshold=threshold, foreground=foreground,
                            background=background, name=stem)
    return atomic_write_many({paths[k]: encode_image(images[k], ".png") for k in paths})


def _resize_float(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if x.shape == tuple(hw):
        return x
    return cv2.resize(x.astype(np.float32), (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
