"""``Predictor``: PDFNet masks for arbitrary images, from Python.

    >>> from pdfnet.inference import Predictor
    >>> pred = Predictor.from_pretrained("Tennineee/PDFNet", depth_model="large", device="cuda")
    >>> mask = pred("photo.jpg")                # float32 [H, W] in [0, 1], the input's size
    >>> masks = pred([img_a, img_b], tta=True)  # list of masks; numpy / PIL / paths accepted
    >>> rgba = pred.cutout("photo.jpg")         # uint8 [H, W, 4], foreground colours refined
    >>> rgb = pred.cutout("photo.jpg", background="white")  # composite, uint8 [H, W, 3]

Pipeline per image (docs/architecture.md, "Inference and evaluation"): RGB (grayscale replicated, alpha
dropped) → pseudo-depth from Depth Anything V2 at the original resolution (or a depth map the caller gives)
→ image and depth resized to the model's square side S ignoring aspect (bilinear, ``align_corners=True``) →
depth min–max normalised **per image** (so batching never changes a result; a constant map, which holds
no depth information, becomes all zeros: :mod:`pdfnet.utils.normalize`) → PDFNet logits P0 (optionally
the 6-pass TTA of :mod:`pdfnet.inference.tta`) → sigmoid → resized back to ``H × W``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pdfnet.depth import DepthEstimator
from pdfnet.errors import UserError
from pdfnet.inference.checkpoint import load_model_for_inference
from pdfnet.inference.fast import FastPathOptions, apply_fast_path
from pdfnet.inference.foreground import (
    DEFAULT_FOREGROUND,
    Background,
    composite,
    cutout_rgba,
    parse_background,
)
from pdfnet.inference.hub import resolve_checkpoint
from pdfnet.inference.preprocess import (
    depth_to_tensor,
    image_to_tensor,
    prob_to_size,
    prob_to_uint8,
    source_name,
    to_depth_float,
    to_rgb_uint8,
)
from pdfnet.inference.tta import TTA_SCALES, tta_logits
from pdfnet.utils.device import resolve_device
from pdfnet.utils.precision import autocast, resolve_dtype

#: ``depth_estimator(list of RGB uint8 [H, W, 3]) -> list of float32 [H, W]`` (near = large).
DepthFn = Callable[[list[np.ndarray]], list[np.ndarray]]


@dataclass
class Prediction:
    """One image's result.

    Attributes:
        prob: foreground probability, float32 ``[H, W]`` in [0, 1] at the input's size.
        depth: the depth map fed to the model (before resizing), float32 ``[h, w]``.
    """

    prob: np.ndarray
    depth: np.ndarray


def model_size_step(model: nn.Module) -> int:
    """Side granularity of ``model``: the smallest unit every valid square input side is a multiple of.

    Read from the encoder (``patch_ratio × backbone.input_multiple`` and ``down_ratio × input_multiple``);
    32 (the released Swin-B model's unit) when the model does not expose them.
    """
    for m in model.modules():
        if hasattr(m, "check_size") and hasattr(m, "patch_ratio") and hasattr(m, "down_ratio"):
            mult = int(getattr(getattr(m, "backbone", None), "input_multiple", 1))
            return math.lcm(int(m.patch_ratio) * mult, int(m.down_ratio) * mult)
    return 32


def check_model_size(model: nn.Module, size: int, step: int) -> None:
    """Raise a :class:`UserError` unless ``size`` is a positive multiple of ``step``."""
    if size <= 0 or size % step:
        raise UserError(f"--size {size} is not supported by this model: use a positive multiple of {step} "
                        f"(e.g. {max(step, round(size / step) * step)})")


class Predictor:
    """Mask prediction for arbitrary images with a PDFNet model and a depth source.

    Args:
        model: a PDFNet (``model(image, depth).logits`` → ``[B, 1, S, S]``), in eval mode.
        size: square model side S (multiple of the model's size step; 1024 for the release).
        device: where the model lives; inputs are moved there.
        dtype: ``torch.float32`` (no autocast) or ``float16``/``bfloat16`` (autocast around the model).
        depth_estimator: ``list[RGB uint8] -> list[float32 HxW]``; e.g. :class:`pdfnet.depth.DepthEstimator`.
            Optional when depth maps are always passed in.
        tta: default for the 6-pass flip × scale TTA (overridable per call).
        batch_size: images per model forward.
        fast: the device's fast path (:meth:`pdfnet.inference.fast.FastPathOptions.best_for`: exact fast
            up-conv stem, channels_last; on CPU also Winograd convs and, process-wide, freed memory kept
            for reuse; fp32 results equal to 1e-4), applied to ``model`` in place.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        size: int,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = torch.float32,
        depth_estimator: DepthFn | None = None,
        tta: bool = False,
        batch_size: int = 1,
        fast: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.model = model.to(self.device).eval()
        self.fast = bool(fast)
        if self.fast:
            apply_fast_path(self.model, FastPathOptions.best_for(self.device))
        self.size_step = model_size_step(self.model)
        check_model_size(self.model, int(size), self.size_step)
        self.size = int(size)
        self.depth_estimator = depth_estimator
        self.tta = bool(tta)
        if batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)

    # ------------------------------------------------------------------------------------------ build

    @classmethod
    def from_pretrained(
        cls,
        ckpt: str | os.PathLike,
        *,
        depth_model: str | os.PathLike | None = "large",
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "fp32",
        size: int | None = None,
        tta: bool = False,
        batch_size: int = 1,
        depth_input_size: int | None = None,
        fast: bool = False,
    ) -> Predictor:
        """Load a checkpoint (and a Depth Anything V2 model) into a ready :class:`Predictor`.

        Args:
            ckpt: our safetensors release (folder or file), our train checkpoint / run folder, the
                official ``PDFNet_Best.pth``, or a Hugging Face Hub id (``Tennineee/PDFNet``,
                ``Tennineee/PDFNet-General`` (``PDF-Generally.pth``),
                ``owner/name`` holding our release, or ``owner/name/file.pth``); see
                :mod:`pdfnet.inference.hub`.
            depth_model: ``small``/``base``/``large``, a Hub id or a local folder of a DAv2 model
                (``transformers`` layout); ``None`` = no estimator (pass ``depths=`` to every call).
            device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
            dtype: ``fp32``, ``fp16`` or ``bf16`` (autocast for PDFNet; the depth model runs in it too).
            size: model side; default the checkpoint config's ``model.input_size`` (1024 for the release).
            tta: default TTA setting.
            batch_size: images per forward (PDFNet and the depth model).
            depth_input_size: DAv2 input short side; default the alias's (518, the DAv2 default).
            fast: the device's fast path for PDFNet (see the class).
        """
        dev = resolve_device(device)
        dt = resolve_dtype(dtype)
        model, cfg = load_model_for_inference(resolve_checkpoint(ckpt), dev)
        estimator = None
        if depth_model is not None:
            estimator = load_depth_estimator(depth_model, dev, dt, depth_input_size, batch_size)
        return cls(model, size=size or cfg.model.input_size, device=dev, dtype=dt,
                   depth_estimator=estimator, tta=tta, batch_size=batch_size, fast=fast)

    # ------------------------------------------------------------------------------------------ API

    def __call__(
        self,
        images: Any,
        depths: Any = None,
        *,
        tta: bool | None = None,
        as_uint8: bool = False,
    ) -> np.ndarray | list[np.ndarray]:
        """Predict masks.

        Args:
            images: one image or a list/tuple of images; each a path, a PIL image or a numpy array
                (``[H,W]``, ``[H,W,1]``, ``[H,W,3]`` RGB, ``[H,W,4]`` RGBA; uint8, uint16 or float in [0,1]).
            depths: optional depth map(s) matching ``images`` (path / PIL / numpy ``[H, W]``; DAv2
                polarity, near = large; any range); ``None`` runs the depth estimator.
            tta: override the predictor's TTA default.
            as_uint8: return uint8 ``round(255·p)`` instead of float32 probabilities.

        Returns:
            float32 ``[H, W]`` in [0, 1] (or uint8 ``[H, W]``) at each input's own size; a list when
            ``images`` is a list/tuple, else one array.
        """
        single = not isinstance(images, (list, tuple))
        imgs = [images] if single else list(images)
        deps = None
        if depths is not None:
            deps = [depths] if single else list(depths)
            if len(deps) != len(imgs):
                raise UserError(f"got {len(imgs)} images but {len(deps)} depth maps")
        rgbs = [to_rgb_uint8(im, source_name(im, i)) for i, im in enumerate(imgs)]
        dmaps = None if deps is None else [to_depth_float(d, f"depth[{i}]") for i, d in enumerate(deps)]
        preds = self.predict_arrays(rgbs, dmaps, tta=tta)
        out = [prob_to_uint8(p.prob) if as_uint8 else p.prob for p in preds]
        return out[0] if single else out

    def cutout(
        self,
        images: Any,
        depths: Any = None,
        *,
        tta: bool | None = None,
        foreground: str | None = DEFAULT_FOREGROUND,
        background: str | Background | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """Cut-outs (RGBA), or composites on a new background (RGB).

        Args:
            images, depths, tta: as :meth:`__call__`.
            foreground: foreground-colour estimator (``"blur-fusion"``, the default, or ``"ml"``; see
                :func:`pdfnet.inference.foreground.estimate_foreground`); None keeps the raw RGB, so the
                old background bleeds into soft edges.
            background: None for RGBA cut-outs; else a colour (``"white"``, ``"#00ff00"``,
                ``"0,255,0"``), ``"blur"``, an image path, or a :class:`Background`.

        Returns:
            uint8 ``[H, W, 4]`` (RGBA, ``round(255·p)`` as alpha) or, with ``background``, uint8
            ``[H, W, 3]``; a list when ``images`` is a list/tuple.
        """
        single = not isinstance(images, (list, tuple))
        imgs = [images] if single else list(images)
        bg = parse_background(background) if isinstance(background, str) else background
        rgbs = [to_rgb_uint8(im, source_name(im, i)) for i, im in enumerate(imgs)]
        probs = self(rgbs, None if depths is None else ([depths] if single else list(depths)), tta=tta)
        out = []
        for rgb, prob in zip(rgbs, probs):
            rgba = cutout_rgba(rgb, prob, foreground=foreground)
            if bg is None:
                out.append(rgba)
            else:
                out.append(composite(rgba[..., :3], prob, bg.render(rgb.astype(np.float32) / 255.0, prob)))
        return out[0] if single else out

    def predict_arrays(
        self,
        rgbs: Sequence[np.ndarray],
        depths: Sequence[np.ndarray] | None = None,
        *,
        tta: bool | None = None,
    ) -> list[Prediction]:
        """Predict for RGB uint8 arrays ``[H, W, 3]`` (+ optional float depth ``[h, w]`` each), batched."""
        out: list[Prediction] = []
        for start in range(0, len(rgbs), self.batch_size):
            chunk = list(rgbs[start:start + self.batch_size])
            dchunk = (list(depths[start:start + self.batch_size]) if depths is not None
                      else self.estimate_depth(chunk))
            out.extend(self._predict_chunk(chunk, dchunk, self.tta if tta is None else tta))
        return out

    def estimate_depth(self, rgbs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Depth maps (float32 ``[H, W]``, near = large) for RGB uint8 images, from the estimator."""
        if self.depth_estimator is None:
            raise UserError("this Predictor has no depth model: pass depths=..., "
                            "or build it with depth_model=...")
        maps = self.depth_estimator(list(rgbs))
        if len(maps) != len(rgbs):
            raise RuntimeError(f"depth estimator returned {len(maps)} maps for {len(rgbs)} images")
        return [np.asarray(m, dtype=np.float32) for m in maps]

    @torch.inference_mode()
    def logits(self, image: torch.Tensor, depth: torch.Tensor, *, tta: bool = False) -> torch.Tensor:
        """Model logits (mean over TTA passes when ``tta``) for prepared tensors.

        Args:
            image: ImageNet-normalised RGB ``[B, 3, S, S]`` on :attr:`device`.
            depth: depth ``[B, 1, S, S]``, each map min–max normalised to [0, 1].

        Returns:
            fp32 logits ``[B, 1, S, S]``.
        """
        if tta:
            return tta_logits(self._forward, image, depth, scales=TTA_SCALES, size_step=self.size_step)
        return self._forward(image, depth).float()

    # ------------------------------------------------------------------------------------------ internals

    def _forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """One plain forward: ``[B,3,s,s]``, ``[B,1,s,s]`` → logits ``[B,1,s,s]`` (autocast when not fp32)."""
        with autocast(self.device, self.dtype):
            return self.model(image, depth).logits

    def _predict_chunk(self, rgbs: list[np.ndarray], depths: list[np.ndarray], tta: bool) -> list[Prediction]:
        img = torch.cat([image_to_tensor(r, self.size, self.device) for r in rgbs])
        dep = torch.cat([depth_to_tensor(d, self.size, self.device) for d in depths])
        prob = torch.sigmoid(self.logits(img, dep, tta=tta))
        if not bool(torch.isfinite(prob).all()):
            raise UserError("the model produced NaN/inf (corrupt weights, or an overflow in "
                            f"{str(self.dtype).removeprefix('torch.')}: try --dtype fp32)")
        return [Prediction(prob=prob_to_size(prob[i], r.shape[:2]), depth=d)
                for i, (r, d) in enumerate(zip(rgbs, depths))]


def load_depth_estimator(
    name_or_path: str | os.PathLike,
    device: torch.device,
    dtype: torch.dtype,
    input_size: int | None = None,
    batch_size: int = 1,
) -> DepthFn:
    """:class:`pdfnet.depth.DepthEstimator` for ``small``/``base``/``large``, a Hub id or a local folder.

    ``input_size`` None keeps the alias's own (518) or the model processor's size.
    """
    try:
        return DepthEstimator.from_pretrained(str(name_or_path), device=device, dtype=dtype,
                                              input_size=input_size, batch_size=batch_size)
    except UserError as e:
        raise UserError(f"{e}. For prediction: --depth-model <local DAv2 folder> (depth_model=... in "
                        "Python), or precomputed maps via --depth-dir (depths=...)") from None
