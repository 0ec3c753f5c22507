"""``DepthEstimator``: a transformers depth model wrapped with the official DAv2 conventions.

Used by ``pdfnet depth`` (precompute) and by inference code that needs depth on the fly::

    est = DepthEstimator.from_pretrained("large", device="cuda", dtype="fp16")
    depths = est([rgb_uint8_hw3, ...])         # list of float32 [H, W], near = large
    maps = [to_uint8(d) for d in depths]       # what the depth folders store
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pdfnet.depth.official import use_official_pos_interp
from pdfnet.depth.registry import DEPTH_MODELS, resolve_source
from pdfnet.depth.transforms import postprocess, preprocess, quantize, target_size
from pdfnet.errors import UserError, load_failure_reason
from pdfnet.utils.normalize import IMAGENET_MEAN, IMAGENET_STD
from pdfnet.utils.precision import DTYPES, autocast, resolve_dtype

log = logging.getLogger(__name__)

#: Model types whose output is relative *inverse* depth (near = large), like DAv2.
_INVERSE_DEPTH_TYPES = {"depth_anything", "prompt_depth_anything", "dpt"}
#: Model types that predict metric depth (near = small); their output is inverted (1/d).
_METRIC_DEPTH_TYPES = {"zoedepth", "glpn", "depth_pro"}


def resolve_depth_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``auto``/None → fp16 on CUDA, fp32 elsewhere. fp16 on CPU falls back to fp32 with a warning."""
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise UserError(f"invalid dtype {dtype!r} (use auto, fp32, fp16 or bf16)")
    dtype = resolve_dtype(dtype)
    if dtype == torch.float16 and device.type == "cpu":
        warnings.warn("fp16 is not supported for depth inference on CPU; using fp32", stacklevel=2)
        return torch.float32
    return dtype


def _polarity_invert(config: object, polarity: str) -> bool:
    if polarity == "keep":
        return False
    if polarity == "invert":
        return True
    if polarity != "auto":
        raise UserError(f"invalid polarity {polarity!r} (use auto, keep or invert)")
    mtype = getattr(config, "model_type", "")
    if getattr(config, "depth_estimation_type", "relative") == "metric" or mtype in _METRIC_DEPTH_TYPES:
        return True
    if mtype not in _INVERSE_DEPTH_TYPES:
        warnings.warn(
            f"unknown depth model type {mtype!r}: assuming it predicts inverse depth (near = large); "
            "pass polarity='invert' if near objects come out dark", stacklevel=3,
        )
    return False


def _processor_dict(source: str) -> dict:
    """``preprocessor_config.json`` of a local dir or cached/downloadable hub id ({} if absent)."""
    local = Path(source) / "preprocessor_config.json"
    try:
        if local.is_file():
            return json.loads(local.read_text())
        from transformers.image_processing_base import ImageProcessingMixin  # heavy: only when loading

        return ImageProcessingMixin.get_image_processor_dict(source)[0]
    except Exception:  # noqa: BLE001 - optional metadata; the defaults are the DAv2 ones
        return {}


class DepthEstimator:
    """Relative inverse depth (near = large) for RGB images, official DAv2 ``infer_image`` semantics.

    Args:
        model: a module called as ``model(pixel_values=x)`` with ``x`` ``[B, 3, h, w]`` that returns
            an object with ``predicted_depth`` ``[B, h', w']`` (transformers depth models do).
        device: where the model lives and the images are processed.
        dtype: autocast dtype for the forward (fp32 = no autocast). Pre/post-processing is fp32.
        input_size: lower bound of the resized short side (518 for DAv2; 1024 for ``large_1024``).
        multiple: the resized sides are multiples of this (the ViT patch size, 14).
        mean, std: normalisation of the [0, 1] RGB input.
        invert: output ``1 / d`` instead of ``d`` (for metric-depth models, so near stays bright).
        batch_size: images per forward in :meth:`__call__`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        input_size: int = 518,
        multiple: int = 14,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        invert: bool = False,
        batch_size: int = 8,
        name: str | None = None,
    ) -> None:
        if input_size < multiple or multiple < 1:
            raise UserError(f"invalid depth input size {input_size} (multiple of {multiple})")
        if batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.dtype = dtype
        self.input_size = int(input_size)
        self.multiple = int(multiple)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.invert = bool(invert)
        self.batch_size = int(batch_size)
        self.name = name

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        device: torch.device | str = "cpu",
        dtype: str | torch.dtype | None = "auto",
        input_size: int | None = None,
        batch_size: int = 8,
        polarity: str = "auto",
        model_paths: dict[str, str] | None = None,
        models_dir: str | None = None,
        model: nn.Module | None = None,
        pos_interp: str = "official",
    ) -> DepthEstimator:
        """Load an alias (``small``/``base``/``large``/``large_1024``), hub id or local directory.

        Args:
            name_or_path: alias from :data:`~pdfnet.depth.DEPTH_MODELS`, a transformers
                depth-estimation hub id, or a local ``save_pretrained`` directory.
            device: torch device (``"cuda"``, ``"cpu"`` …).
            dtype: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16``, ``bf16`` or a torch dtype.
            input_size: overrides the alias's input size (518, or 1024 for ``large_1024``); for
                other models: the processor's size, else 518.
            polarity: ``auto`` (invert metric-depth models so near = bright), ``keep`` or ``invert``.
            model_paths, models_dir: local weights per alias (see :func:`resolve_source`).
            model: an already loaded module for the same source (reused, e.g. ``large`` for
                ``large_1024``); skips loading.
            pos_interp: ``official`` resizes DINOv2's position embeddings like the official DAv2
                code (what PDFNet's depth maps were made with; see :mod:`pdfnet.depth.official`),
                ``transformers`` keeps the port's own resize.
        """
        device = torch.device(device)
        dtype = resolve_depth_dtype(dtype, device)
        spec = DEPTH_MODELS.get(name_or_path)
        source = resolve_source(name_or_path, model_paths, models_dir)
        if model is None:
            model = load_depth_model(source)
        if pos_interp not in ("official", "transformers"):
            raise UserError(f"invalid pos_interp {pos_interp!r} (use official or transformers)")
        use_official_pos_interp(model, enable=pos_interp == "official")
        # Aliases are DAv2: ImageNet mean/std, multiple 14; no need to fetch their processor file.
        proc = {} if spec is not None else _processor_dict(source)
        config = getattr(model, "config", None)
        try:
            if input_size is None:
                if spec is not None:
                    input_size = spec.input_size
                else:
                    size = proc.get("size") or {}
                    input_size = int(size.get("height", 518)) if isinstance(size, dict) else int(size or 518)
            multiple = int(proc.get("ensure_multiple_of") or getattr(config, "patch_size", None) or 14)
        except (TypeError, ValueError, AttributeError) as e:
            raise UserError(f"depth model {source!r}: malformed preprocessor_config.json ({e})") from None
        return cls(
            model,
            device=device,
            dtype=dtype,
            input_size=input_size,
            multiple=multiple,
            mean=proc.get("image_mean") or IMAGENET_MEAN,
            std=proc.get("image_std") or IMAGENET_STD,
            invert=_polarity_invert(config, polarity),
            batch_size=batch_size,
            name=name_or_path,
        )

    # ------------------------------------------------------------------ core
    def target_size(self, height: int, width: int) -> tuple[int, int]:
        """Network input ``(h, w)`` for an image of ``height × width``."""
        return target_size(height, width, self.input_size, self.multiple)

    def input_key(self, height: int, width: int) -> tuple:
        """Estimators with equal keys accept the same :meth:`prepare` batch for this image size."""
        return (self.target_size(height, width), self.mean, self.std, self.device)

    @torch.inference_mode()
    def prepare(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Upload and preprocess images that share one network input size.

        Args:
            images: RGB uint8 ``[H_i, W_i, 3]`` tensors (any device); all must map to the same
                :meth:`target_size`.

        Returns:
            ``(x, sizes)``: the normalised batch ``[B, 3, h, w]`` (float32, on :attr:`device`) and
            the original ``(H_i, W_i)``.
        """
        sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        tsizes = {self.target_size(h, w) for h, w in sizes}
        if len(tsizes) != 1:
            raise ValueError(f"images map to different input sizes {sorted(tsizes)}; group them first")
        imgs = [im.to(self.device, non_blocking=True) for im in images]
        return preprocess(imgs, tsizes.pop(), self.mean, self.std), sizes

    @torch.inference_mode()
    def run_prepared(self, x: torch.Tensor, sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """Network + post-processing on a :meth:`prepare` batch: float32 ``[H_i, W_i]`` per image."""
        with autocast(self.device, self.dtype):
            out = self.model(pixel_values=x)
        pred = out.predicted_depth if hasattr(out, "predicted_depth") else out[0]
        pred = pred.float()
        if self.invert:
            pred = 1.0 / pred.clamp_min(1e-6)
        return postprocess(pred, sizes)

    def forward_batch(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        """Depth for images that share one network input size.

        Args:
            images: RGB uint8 ``[H_i, W_i, 3]`` tensors (any device); all must map to the same
                :meth:`target_size`.

        Returns:
            float32 ``[H_i, W_i]`` relative inverse depth per image, on :attr:`device`.
        """
        return self.run_prepared(*self.prepare(images))

    @torch.inference_mode()
    def quantized_batch(
        self,
        images: list[torch.Tensor] | None = None,
        bits: int = 8,
        prepared: tuple[torch.Tensor, list[tuple[int, int]]] | None = None,
    ) -> list[np.ndarray]:
        """Depth then per-image min–max to uint8/uint16 (on the device); from ``images`` or a
        :meth:`prepare` result (``prepared``, shareable between estimators with equal
        :meth:`input_key`)."""
        if prepared is None:
            if images is None:
                raise ValueError("give images or prepared")
            prepared = self.prepare(images)
        maps = [quantize(d, bits) for d in self.run_prepared(*prepared)]
        if bits == 8:  # 4× less to copy back
            return [m.to(torch.uint8).cpu().numpy() for m in maps]
        return [m.cpu().numpy().astype(np.uint16) for m in maps]

    def __call__(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Relative inverse depth at original size.

        Args:
            images: RGB uint8 arrays ``[H_i, W_i, 3]`` of any sizes.

        Returns:
            float32 arrays ``[H_i, W_i]`` (near = large, ≥ 0), in input order.
        """
        tensors = [torch.from_numpy(np.ascontiguousarray(im)) for im in images]
        out: list[np.ndarray | None] = [None] * len(tensors)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(tensors):
            if t.dtype != torch.uint8 or t.ndim != 3 or t.shape[2] != 3:
                raise ValueError(f"image {i}: expected RGB uint8 [H, W, 3], got {t.dtype} {tuple(t.shape)}")
            groups.setdefault(self.target_size(t.shape[0], t.shape[1]), []).append(i)
        for idx in groups.values():
            for k in range(0, len(idx), self.batch_size):
                chunk = idx[k : k + self.batch_size]
                for i, d in zip(chunk, self.forward_batch([tensors[i] for i in chunk]), strict=True):
                    out[i] = d.cpu().numpy()
        return out  # type: ignore[return-value]


def load_depth_model(source: str) -> nn.Module:
    """``AutoModelForDepthEstimation.from_pretrained(source)`` with user-facing errors."""
    from transformers import AutoModelForDepthEstimation  # heavy (seconds): only when a model is loaded

    try:
        model, info = AutoModelForDepthEstimation.from_pretrained(source, output_loading_info=True)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Weights only load failed" in str(e):
            first = load_failure_reason(e)
        raise UserError(
            f"cannot load depth model {source!r}: {first} (offline? pass a local directory, e.g. "
            "--model-path small=DIR, or set PDFNET_DEPTH_MODELS_DIR)"
        ) from None
    except Exception as e:  # noqa: BLE001 - a malformed folder fails in many ways (pickle, JSON, keys)
        raise UserError(f"cannot load depth model {source!r}: the folder is not a usable transformers "
                        f"depth model ({load_failure_reason(e)})") from None
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "mismatched_keys") and v}
    if bad:  # strict: a partly random depth model must not silently write depth maps
        raise UserError(f"depth model {source!r} does not match its weights: {bad}")
    return model.eval()
