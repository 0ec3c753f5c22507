"""Device and dtype names from users (``auto``, ``cpu``, ``cuda:1``; ``fp32``/``fp16``/``bf16``)."""

from __future__ import annotations

import torch

from pdfnet.errors import UserError

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` → cuda when available, else cpu; otherwise a valid, available torch device."""
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise UserError(f"invalid device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {str(dev)!r} requested but CUDA is not available")
    return dev


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``fp32``/``fp16``/``bf16`` (or a torch dtype among those) → torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise UserError(f"unsupported dtype {dtype} (use fp32, fp16 or bf16)")
        return dtype
    if dtype not in DTYPES:
        raise UserError(f"invalid dtype {dtype!r} (use one of {', '.join(DTYPES)})")
    return DTYPES[dtype]
