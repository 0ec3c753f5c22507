"""Device names from users (``auto``, ``cpu``, ``cuda:1``); precision names: :mod:`pdfnet.utils.precision`."""

from __future__ import annotations

import torch

from pdfnet.errors import UserError


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
