"""Foreground colours for cut-outs, and composites onto new backgrounds.

An observed image is a per-pixel mix ``I = α·F + (1 − α)·B`` of a foreground colour ``F`` and a
background colour ``B``. A naive cut-out keeps ``I`` under the predicted ``α``, so on every soft edge
(hair, fur, motion blur, glass) the old background stays mixed into the colour: placed on a new
background, the subject gets a halo of the old one. :func:`estimate_foreground` solves for ``F``:

``"blur-fusion"`` (default)
    The blur-fusion estimator of Forte & Pitié ("Approximate fast foreground colour estimation",
    ICIP 2021): local means ``F̄``, ``B̄`` of ``F`` and ``B`` from α-weighted box blurs, then the
    per-pixel correction ``F = F̄ + α·(I − α·F̄ − (1 − α)·B̄)``. The paper runs it twice (a 90-px window
    from ``F = B = I``, then a 6-px window from the first pass's estimates); we run three passes
    coarse to fine, 180 → 30 → 6 px, which on our synthetic composites lowers the soft-edge error by
    ~1.5–1.8× over the two-pass schedule at 512²–2048² for ~20 % more time (``docs/cutouts.md``).
    A few box blurs with OpenCV per pass: linear in the pixel count, independent of the window size.
``"ml"``
    The multi-level solver of Germer et al. ("Fast multi-level foreground estimation", ICPR 2020) as
    implemented by PyMatting (``estimate_foreground_ml``): a regularised least-squares fit of ``F`` and
    ``B`` solved coarse to fine. The reference; slower, and needs the optional extra
    ``pip install -e '.[matting]'`` (pymatting + numba).

Measured quality and speed of both against the naive cut-out: ``docs/cutouts.md``
(``pdfnet bench foreground``).

:func:`composite` places a foreground on a new :class:`Background` (a colour, a blurred copy of the
image's own background, or another image).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pdfnet.errors import UserError
from pdfnet.inference.preprocess import prob_to_uint8
from pdfnet.utils.io import read_rgb

FOREGROUND_METHODS: tuple[str, ...] = ("blur-fusion", "ml")
#: What cut-outs and composites use unless told otherwise (``pdfnet predict``, ``Predictor.cutout``).
DEFAULT_FOREGROUND: str = "blur-fusion"

#: Named colours accepted by :func:`parse_background` (besides ``#rgb``, ``#rrggbb`` and ``R,G,B``).
NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "grey": (128, 128, 128),
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "cyan": (0, 255, 255), "magenta": (255, 0, 255),
}

_EPS = 1e-5


# ------------------------------------------------------------------------------------- conversions


def image_to_float(image: np.ndarray, name: str = "image") -> np.ndarray:
    """RGB ``[H, W, 3]`` uint8 / uint16 / float in [0, 1] → float32 ``[H, W, 3]`` in [0, 1]."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise UserError(f"{name}: expected an RGB array [H, W, 3], got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) * (1.0 / 255.0)
    if img.dtype == np.uint16:
        return img.astype(np.float32) * (1.0 / 65535.0)
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img.astype(np.float32), 0.0, 1.0)
    raise UserError(f"{name}: unsupported dtype {img.dtype} (uint8, uint16 or float in [0, 1])")


def alpha_to_float(alpha: np.ndarray, hw: tuple[int, int], name: str = "alpha") -> np.ndarray:
    """Alpha ``[H, W]`` (or ``[H, W, 1]``) float in [0, 1] or uint8 (/255) → float32 ``[H, W]``."""
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.shape != tuple(hw):
        raise UserError(f"{name}: shape {a.shape} does not match the image's {tuple(hw)}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) * (1.0 / 255.0)
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.floating):
        return np.clip(a.astype(np.float32), 0.0, 1.0)
    raise UserError(f"{name}: unsupported dtype {a.dtype} (float in [0, 1], bool or uint8)")


# ------------------------------------------------------------------------------------- estimators


def estimate_foreground(
    image: np.ndarray, alpha: np.ndarray, *, method: str = DEFAULT_FOREGROUND
) -> np.ndarray:
    """Foreground colours ``F`` of ``image`` under ``alpha``, without the old background mixed in.

    Args:
        image: RGB ``[H, W, 3]``: uint8, uint16, or float in [0, 1].
        alpha: ``[H, W]`` float in [0, 1] (uint8 is read as ``/255``, bool as 0/1).
        method: ``"blur-fusion"`` (fast, the default) or ``"ml"`` (PyMatting's multi-level solver;
            needs the ``[matting]`` extra). See the module docstring.

    Returns:
        ``F`` ``[H, W, 3]`` in the image's kind: uint8 for uint8 input, else float32 in [0, 1]. Where
        ``α = 1`` it equals the image (blur-fusion: exactly, up to rounding); where ``α = 0`` it is an
        extrapolation of nearby foreground colours (invisible under that alpha).

    Raises:
        UserError: bad shapes/dtypes, an unknown method, or ``"ml"`` without pymatting installed.
    """
    img = image_to_float(image)
    a = alpha_to_float(alpha, img.shape[:2])
    if method == "blur-fusion":
        fg = blur_fusion_foreground(img, a)
    elif method == "ml":
        fg = ml_foreground(img, a)
    else:
        raise UserError(f"unknown foreground method {method!r}; choose from {', '.join(FOREGROUND_METHODS)}")
    return prob_to_uint8(fg) if np.asarray(image).dtype == np.uint8 else fg


#: box-window sizes of the blur-fusion passes, widest first (see the module docstring)
BLUR_FUSION_RADII: tuple[int, ...] = (180, 30, 6)


def blur_fusion_foreground(
    image: np.ndarray, alpha: np.ndarray, radii: tuple[int, ...] = BLUR_FUSION_RADII
) -> np.ndarray:
    """Blur-fusion foreground estimate (Forte & Pitié 2021), one pass per box-window size in ``radii``.

    Each pass: ``F̄ = blur(F·α) / blur(α)``, ``B̄ = blur(B·(1 − α)) / blur(1 − α)`` (box window ``r``), then
    ``F = F̄ + α·(I − α·F̄ − (1 − α)·B̄)`` and ``B = B̄`` for the next pass; the first starts from
    ``F = B = I``. The correction is evaluated only where it can differ from a shortcut: ``F = I`` where
    α = 1 and ``F = F̄`` where α = 0 (the formula gives exactly these), so per pass the full-image work is
    the three box blurs and one product.

    Args:
        image: float32 RGB ``[H, W, 3]`` in [0, 1].
        alpha: float32 ``[H, W]`` in [0, 1].
        radii: box-window sizes, widest first.

    Returns:
        float32 ``[H, W, 3]`` in [0, 1].
    """
    h, w = alpha.shape
    a = alpha[:, :, None]
    soft = np.flatnonzero((alpha > 0) & (alpha < 1))
    a_s = alpha.reshape(-1)[soft][:, None]
    img_s = image.reshape(-1, 3)[soft]
    fg_a = image * a  # F·α (F = I to start; only the soft pixels change between passes)
    bg_inv = image - fg_a  # B·(1 − α) with B = I
    f_mean = None
    for r in radii:
        ksize = (int(r), int(r))
        a_blur = cv2.blur(alpha, ksize)
        f_scale = (1.0 / (a_blur + _EPS)).reshape(-1)
        b_scale = 1.0 / ((1.0 - a_blur) + _EPS)
        f_mean = cv2.blur(fg_a, ksize)  # un-normalised: × f_scale below
        b_sum = cv2.blur(bg_inv, ksize)
        f_s = f_mean.reshape(-1, 3)[soft] * f_scale[soft][:, None]
        b_s = b_sum.reshape(-1, 3)[soft] * b_scale.reshape(-1)[soft][:, None]
        fg_s = np.clip(f_s + a_s * (img_s - a_s * f_s - (1.0 - a_s) * b_s), 0.0, 1.0)
        fg_a.reshape(-1, 3)[soft] = fg_s * a_s
        bg_inv = b_sum * (b_scale * (1.0 - alpha))[:, :, None]  # next pass: B̄·(1 − α)
    out = image.copy()
    out_flat = out.reshape(-1, 3)
    out_flat[soft] = fg_s
    clear = np.flatnonzero(alpha.reshape(-1) <= 0)  # α = 0: F = F̄ (a colour extrapolated from nearby)
    out_flat[clear] = np.clip(f_mean.reshape(-1, 3)[clear] * f_scale[clear][:, None], 0.0, 1.0)
    return out.reshape(h, w, 3)


def ml_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """PyMatting's multi-level foreground estimate (float32 RGB ``[H, W, 3]`` and ``[H, W]`` in [0, 1]).

    Raises:
        UserError: pymatting is not installed (the ``[matting]`` extra).
    """
    try:  # optional heavy dependency (numba JIT); imported only when asked for
        from pymatting import estimate_foreground_ml
    except ImportError:
        raise UserError("foreground method 'ml' needs pymatting: pip install -e '.[matting]'") from None
    fg = estimate_foreground_ml(image.astype(np.float64), alpha.astype(np.float64))
    return np.clip(np.asarray(fg, dtype=np.float32), 0.0, 1.0)


# ------------------------------------------------------------------------------------- backgrounds


@dataclass(frozen=True)
class Background:
    """A new background for composites: ``kind`` is ``"color"``, ``"blur"`` or ``"image"``.

    Attributes:
        kind: which of the three.
        color: RGB 0..255 for ``"color"``.
        image: RGB uint8 ``[h, w, 3]`` for ``"image"`` (scaled to cover each target, centre-cropped).
        spec: the text it was parsed from (for messages).
    """

    kind: str
    color: tuple[int, int, int] | None = None
    image: np.ndarray | None = None
    spec: str = ""

    def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The background for one image: float32 ``[H, W, 3]`` in [0, 1].

        Args:
            rgb: the input, float32 RGB ``[H, W, 3]`` in [0, 1] (used by ``"blur"``).
            alpha: float32 ``[H, W]`` in [0, 1] (``"blur"`` leaves the foreground out of its blur).
        """
        h, w = rgb.shape[:2]
        if self.kind == "color":
            return np.broadcast_to(np.asarray(self.color, np.float32) / 255.0, (h, w, 3))
        if self.kind == "blur":
            return blurred_background(rgb, alpha)
        return image_to_float(cover_resize(self.image, (h, w)))


def parse_background(spec: str) -> Background:
    """``--background`` text → :class:`Background`.

    Accepted: ``blur``; a colour (``white``, ``black``, ... see :data:`NAMED_COLORS`, ``#rrggbb``,
    ``#rgb`` or ``R,G,B`` with 0..255 values); or the path of an image file (read once here).

    Raises:
        UserError: none of these.
    """
    s = str(spec).strip()
    if s.lower() == "blur":
        return Background("blur", spec=s)
    color = _parse_color(s)
    if color is not None:
        return Background("color", color=color, spec=s)
    if os.path.isfile(s):
        return Background("image", image=read_rgb(Path(s)), spec=s)
    raise UserError(f"--background {s!r}: not a colour (a name such as white, #rrggbb or R,G,B), 'blur', "
                    "or an existing image file")


def _parse_color(s: str) -> tuple[int, int, int] | None:
    low = s.lower()
    if low in NAMED_COLORS:
        return NAMED_COLORS[low]
    m = re.fullmatch(r"#?([0-9a-f]{6}|[0-9a-f]{3})", low)
    if m and (low.startswith("#") or len(m.group(1)) == 6 and not os.path.exists(s)):
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    m = re.fullmatch(r"\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*", s)
    if m:
        vals = tuple(int(v) for v in m.groups())
        if max(vals) > 255:
            raise UserError(f"--background {s!r}: colour values must be in 0..255")
        return vals  # type: ignore[return-value]
    return None


def blurred_background(rgb: np.ndarray, alpha: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """The image's own background, Gaussian-blurred with the foreground left out (a "portrait mode").

    A normalised convolution: ``blur(I·(1 − α)) / blur(1 − α)``, so the subject's colours do not smear
    into the blurred background around it. Where the window holds no background at all (deep inside
    the subject, where a composite shows the foreground anyway) a plain blur of the image is used.

    Args:
        rgb: float32 RGB ``[H, W, 3]`` in [0, 1].
        alpha: float32 ``[H, W]`` in [0, 1].
        sigma: Gaussian sigma in pixels; default 2 % of the longer side (at least 2).

    Returns:
        float32 ``[H, W, 3]`` in [0, 1].
    """
    s = float(sigma) if sigma is not None else max(2.0, 0.02 * max(rgb.shape[:2]))
    w_bg = (1.0 - alpha).astype(np.float32)
    num = cv2.GaussianBlur(rgb * w_bg[:, :, None], (0, 0), s)
    den = cv2.GaussianBlur(w_bg, (0, 0), s)[:, :, None]
    plain = cv2.GaussianBlur(rgb, (0, 0), s)
    weight = np.clip(den / 0.05, 0.0, 1.0)  # trust the normalised blur once 5 % of the window is background
    return weight * (num / np.maximum(den, _EPS)) + (1.0 - weight) * plain


def cover_resize(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` ``[h, w, C]`` to cover ``hw`` (aspect kept) and centre-crop it to exactly ``hw``."""
    th, tw = hw
    h, w = image.shape[:2]
    scale = max(th / h, tw / w)
    nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    y0, x0 = (nh - th) // 2, (nw - tw) // 2
    return resized[y0:y0 + th, x0:x0 + tw]


def composite(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``α·F + (1 − α)·B`` as RGB uint8 ``[H, W, 3]``.

    Args:
        foreground: ``F`` ``[H, W, 3]`` (uint8 or float in [0, 1]).
        alpha: ``[H, W]`` float in [0, 1] (or uint8).
        background: ``B`` ``[H, W, 3]`` (uint8 or float in [0, 1]).
    """
    fg = image_to_float(foreground, "foreground")
    a = alpha_to_float(alpha, fg.shape[:2])[:, :, None]
    bg = image_to_float(np.ascontiguousarray(background), "background")
    if bg.shape != fg.shape:
        raise UserError(f"background shape {bg.shape} does not match the foreground's {fg.shape}")
    return prob_to_uint8(a * fg + (1.0 - a) * bg)


def cutout_rgba(
    rgb: np.ndarray, alpha: np.ndarray, *, foreground: str | None = DEFAULT_FOREGROUND
) -> np.ndarray:
    """RGBA uint8 ``[H, W, 4]`` cut-out: estimated foreground colours (or the raw RGB when ``foreground``
    is None) with ``round(255·α)`` as alpha. ``rgb`` uint8 ``[H, W, 3]``, ``alpha`` float ``[H, W]``."""
    fg = rgb if foreground is None else estimate_foreground(rgb, alpha, method=foreground)
    a = prob_to_uint8(alpha_to_float(alpha, rgb.shape[:2]))
    return np.concatenate([fg, a[:, :, None]], axis=2)
