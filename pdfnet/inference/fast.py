"""Fast inference for a fixed input shape: autocast, channels_last, fast up-conv stem, compile, CUDA graphs.

:class:`FastInference` wraps a :class:`~pdfnet.models.PDFNet` and returns the P0 logits as fp32,
exactly what ``model(image, depth).logits`` returns in fp32 eager mode up to the tolerance of the
chosen options (tested in ``tests/test_fastpath_parity.py``):

=====================  ==========================================  ===========================
option                 what it does                                 parity with fp32 eager
=====================  ==========================================  ===========================
``channels_last``      NHWC weights and inputs (cuDNN/oneDNN         same math, other summation
                       fast paths, no layout transforms)             order: ≤ 1e-4
``fast_upconv``        the up-conv stem without the 4S×4S tensor     ≤ 1e-4 (op itself: 1e-5)
                       (:mod:`pdfnet.models.upconv`)
``winograd``           the CRS 3×3 convs as Winograd F(4×4, 3×3)     ≤ 1e-4 (op: ~1e-5 relative)
                       (:mod:`pdfnet.models.winograd`; fp32 only)
``retain_memory``      process-wide: freed memory stays in the heap  bit-identical (only where
                       (no page faults per temporary; CPU, glibc)    the bytes live changes)
``dtype=bf16/fp16``    ``torch.autocast`` mixed precision            ~1e-2 abs on logits
``compile``            ``torch.compile`` (inductor by default)       ≤ 1e-4 in fp32
``cudagraphs``         capture the whole forward once per shape      bit-identical to the
                       in a CUDA graph and replay it (CUDA only)     captured path
=====================  ==========================================  ===========================

CUDA graphs need fixed shapes and no host synchronisation in the forward (the model has none): the
wrapper keeps one graph per (shape, dtype) of the inputs and copies inputs into static buffers. The
returned tensor is a fresh copy, so results stay valid across calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from pdfnet.models.layers import CRS
from pdfnet.utils.allocator import retain_freed_memory
from pdfnet.utils.precision import DTYPES, autocast

__all__ = ["FastPathOptions", "FastInference", "apply_fast_path", "set_fast_upconv", "set_winograd",
           "supports_fast_upconv"]

@dataclass(frozen=True)
class FastPathOptions:
    """Inference fast-path switches (all off = the release's fp32 eager model).

    Attributes:
        dtype: ``fp32`` (no autocast), ``bf16`` or ``fp16`` autocast.
        channels_last: NHWC memory format for weights and inputs.
        fast_upconv: exact fast up-conv stem (needs a model whose head supports it).
        winograd: the CRS blocks' 3×3 convolutions as Winograd F(4×4, 3×3) on large fp32 maps (4× fewer
            multiplications; the CPU fast path — cuDNN already chooses such algorithms on CUDA).
        retain_memory: keep freed host memory in the process for reuse
            (:func:`pdfnet.utils.allocator.retain_freed_memory`; process-wide, CPU inference).
        compile: wrap the forward in ``torch.compile``.
        compile_mode: ``torch.compile`` mode (None = default, ``reduce-overhead``, ``max-autotune``,
            ``max-autotune-no-cudagraphs``).
        compile_backend: ``inductor`` (default), or ``aot_eager``/``eager`` to check tracing only.
        fullgraph: make ``torch.compile`` fail on any graph break (the model has none).
        cudagraphs: capture the (eager or compiled) forward in a CUDA graph per input shape.
        tf32: True/False sets TF32 for fp32 matmuls and cuDNN convs (True changes fp32 numerics to
            ~1e-3); None (default) leaves PyTorch's settings alone (matmul off, cuDNN on), like the
            release.
    """

    dtype: str = "fp32"
    channels_last: bool = False
    fast_upconv: bool = False
    winograd: bool = False
    retain_memory: bool = False
    compile: bool = False
    compile_mode: str | None = None
    compile_backend: str = "inductor"
    fullgraph: bool = False
    cudagraphs: bool = False
    tf32: bool | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")

    @classmethod
    def best_for(cls, device: torch.device | str, dtype: str = "fp32") -> FastPathOptions:
        """The fast path ``--fast`` selects for ``device`` at ``dtype`` (measured: docs/benchmarks.md).

        Both devices get the exact fast up-conv stem and channels_last (NHWC convs: oneDNN on CPU, cuDNN
        on CUDA; no layout reorders around each conv); the CPU also gets Winograd convolutions (fp32
        only; cuDNN has its own) and keeps freed memory for reuse (large temporaries otherwise cost
        page faults each time). All keep fp32 outputs equal to 1e-4 and apply to any caller (the
        predictor and evaluation too, with their own batch shapes and TTA). ``torch.compile`` and CUDA
        graphs stay explicit options: compile takes minutes (and did not pay on a 2-core CPU), graphs
        need fixed shapes.
        """
        cpu = torch.device(device).type == "cpu"
        return cls(dtype=dtype, channels_last=True, fast_upconv=True, winograd=cpu, retain_memory=cpu)

    def label(self) -> str:
        """Short human-readable name, e.g. ``bf16+cl+upconv+compile``."""
        parts = [self.dtype]
        if self.tf32 is not None:
            parts.append("tf32" if self.tf32 else "notf32")
        if self.channels_last:
            parts.append("cl")
        if self.fast_upconv:
            parts.append("upconv")
        if self.winograd:
            parts.append("wino")
        if self.retain_memory:
            parts.append("keepmem")
        if self.compile:
            parts.append("compile" + (f"[{self.compile_mode}]" if self.compile_mode else "")
                         + ("" if self.compile_backend == "inductor" else f"[{self.compile_backend}]"))
        if self.cudagraphs:
            parts.append("cudagraphs")
        return "+".join(parts) if len(parts) > 1 else f"{self.dtype}-eager"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def supports_fast_upconv(model: nn.Module) -> bool:
    """Whether the model's up-conv head exposes the fast stem switch."""
    head = getattr(model, "head", None)
    return head is not None and hasattr(head, "fast_stem")


def set_fast_upconv(model: nn.Module, enable: bool = True) -> None:
    """Switch the up-conv head's exact fast stem on or off.

    Raises:
        ValueError: the model's head has no fast stem.
    """
    if not supports_fast_upconv(model):
        raise ValueError("this model's up-conv head has no fast stem (head.fast_stem)")
    model.head.fast_stem = bool(enable)


def set_winograd(model: nn.Module, enable: bool = True) -> None:
    """Switch Winograd convolution on or off in every CRS block of ``model``."""
    for m in model.modules():
        if isinstance(m, CRS):
            m.winograd = bool(enable)


def apply_fast_path(model: nn.Module, options: FastPathOptions) -> nn.Module:
    """Apply the model-side switches of ``options`` in place (channels_last weights, fast up-conv stem,
    Winograd convolutions), and the process-wide ``retain_memory``.

    The forward-side ones (autocast dtype, compile, CUDA graphs) belong to the caller (:class:`FastInference`,
    the predictor, evaluation). Returns ``model``.
    """
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    if options.fast_upconv:
        set_fast_upconv(model, True)
    if options.winograd:
        set_winograd(model, True)
    if options.retain_memory:
        retain_freed_memory(True)
    return model


class _GraphedCallable:
    """One CUDA graph per input signature; inputs are copied into static buffers, outputs cloned."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], warmup: int = 3) -> None:
        self.fn = fn
        self.warmup = warmup
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def _key(*xs: torch.Tensor) -> tuple:
        return tuple((tuple(x.shape), x.dtype, x.device, x.stride()) for x in xs)

    def _capture(self, image: torch.Tensor, depth: torch.Tensor):
        s_img, s_dep = image.clone(), depth.clone()
        side = torch.cuda.Stream(device=image.device)
        side.wait_stream(torch.cuda.current_stream(image.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.fn(s_img, s_dep)
        torch.cuda.current_stream(image.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            s_out = self.fn(s_img, s_dep)
        return graph, s_img, s_dep, s_out

    def __call__(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        key = self._key(image, depth)
        if key not in self.graphs:
            self.graphs[key] = self._capture(image, depth)
        graph, s_img, s_dep, s_out = self.graphs[key]
        s_img.copy_(image)
        s_dep.copy_(depth)
        graph.replay()
        return s_out.clone()


class FastInference:
    """P0 logits of a PDFNet with the chosen fast paths.

    Args:
        model: a :class:`~pdfnet.models.PDFNet` (moved to ``device`` and put in eval mode; with
            ``channels_last`` its 4-D weights are converted in place).
        device: where to run.
        options: :class:`FastPathOptions`.

    Call with ``image`` [B, 3, S, S] (ImageNet-normalised) and ``depth`` [B, 1, S, S]; returns fp32
    logits [B, 1, S, S]. The depth decoder is never run.
    """

    def __init__(self, model: nn.Module, device: torch.device | str, options: FastPathOptions | None = None):
        self.options = opts = options or FastPathOptions()
        self.device = torch.device(device)
        if opts.cudagraphs and self.device.type != "cuda":
            raise ValueError("cudagraphs needs a CUDA device")
        if opts.dtype == "fp16" and self.device.type == "cpu":
            raise ValueError("fp16 autocast is not supported for this model on CPU; use bf16 or fp32")
        self.model = apply_fast_path(model.to(self.device).eval(), opts)
        if self.device.type == "cuda" and opts.tf32 is not None:
            torch.backends.cuda.matmul.allow_tf32 = opts.tf32
            torch.backends.cudnn.allow_tf32 = opts.tf32
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self._forward
        if opts.compile:
            fn = torch.compile(fn, mode=opts.compile_mode, backend=opts.compile_backend, dynamic=False,
                               fullgraph=opts.fullgraph)
        if opts.cudagraphs:
            fn = _GraphedCallable(fn)
        self._fn = fn

    def _forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, DTYPES[self.options.dtype]):
            out = self.model(image, depth, with_depth_decoder=False)
        return out.logits.float()

    def prepare(self, image: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move inputs to the device (and to channels_last when enabled)."""
        image = image.to(self.device, torch.float32, non_blocking=True)
        depth = depth.to(self.device, torch.float32, non_blocking=True)
        if self.options.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            depth = depth.contiguous(memory_format=torch.channels_last)
        return image, depth

    @torch.no_grad()  # not inference_mode: the model caches constants that training may reuse later
    def __call__(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        image, depth = self.prepare(image, depth)
        return self._fn(image, depth)
