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

__all__ = ["DTYPES", "amp_precision", "autocast", "resolve_dtype"]

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


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type; a no-op context for ``None`` or fp32."""
    if dtype is None or dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


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
