"""Precision names and mixed precision: the one owner of ``fp32``/``fp16``/``bf16`` → dtype and of autocast.

Every forward that runs in reduced precision (training, evaluation, prediction, the fast path, the depth
model, the benchmarks) enters :func:`autocast`; every user-facing precision name goes through
:data:`DTYPES` (:func:`resolve_dtype`, or :func:`amp_precision` when fp16 needs a ``GradScaler``).
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from pdfnet.errors import UserError

__all__ = ["DTYPES", "amp_precision", "autocast", "cpu_bf16_kernels", "resolve_dtype"]

#: Precision name → torch dtype (the names the config, the CLI and the Python API accept).
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``fp32``/``fp16``/``bf16`` (or a torch dtype among those) → torch dtype.

    Raises:
        UserError: any other name or dtype.
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise UserError(f"unsupported dtype {dtype} (use fp32, fp16 or bf16)")
        return dtype
    if dtype not in DTYPES:
        raise UserError(f"invalid dtype {dtype!r} (use one of {', '.join(DTYPES)})")
    return DTYPES[dtype]


def cpu_bf16_kernels() -> bool:
    """Whether this CPU runs bf16 matmuls and convolutions through oneDNN (AVX-512 / AVX-512-BF16 / AMX,
    Arm BF16) — the condition PyTorch itself uses to route them there.

    Without it (e.g. an AVX2-only x86 CPU) PyTorch falls back to reference loops: measured on such a
    CPU (docs/benchmarks.md), a bf16 Linear is ~6× and an NCHW 3×3 conv ~300× slower than fp32, so bf16
    autocast makes inference far slower, not faster.
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; a no-op context for ``None`` or fp32.

    bf16 on a CPU without bf16 kernels (:func:`cpu_bf16_kernels`) warns (once per call site): it runs,
    but many times slower than fp32.
    """
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    dev = torch.device(device)
    if dev.type == "cpu" and dtype == torch.bfloat16 and not cpu_bf16_kernels():
        warnings.warn("bf16 on this CPU (no AVX-512/AMX bf16 kernels) runs many times slower than fp32; "
                      "use fp32 here (docs/benchmarks.md)", stacklevel=2)
    return torch.autocast(device_type=dev.type, dtype=dtype)


def amp_precision(name: str, device: torch.device, *, warn: bool = True) -> tuple[torch.dtype | None, bool]:
    """``(autocast dtype or None, use a GradScaler)`` for a training/evaluation precision name on ``device``.

    ``fp16`` needs a ``GradScaler`` and CUDA kernels; on CPU it is not a sensible mode (slow, no
    scaler), so there it falls back to fp32 (with a warning when ``warn``). ``bf16`` works on both.

    Raises:
        UserError: an unknown name.
    """
    if name not in DTYPES:
        raise UserError(f"unknown precision {name!r} (use fp32, bf16 or fp16)")
    if name == "fp32":
        return None, False
    if name == "fp16" and torch.device(device).type != "cuda":
        if warn:
            warnings.warn("precision fp16 is not supported on CPU (no GradScaler, slow kernels); running in "
                          "fp32 instead. Use bf16 for CPU mixed precision.", stacklevel=2)
        return None, False
    return DTYPES[name], name == "fp16"
