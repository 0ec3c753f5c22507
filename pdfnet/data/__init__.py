"""DIS5K and generic dataset discovery, dataset checks, the PDFNet dataset with the release's
augmentations, and synthetic DIS-like data.

Names are imported on first use (PEP 562), so the torch-free parts (discovery in
:mod:`pdfnet.data.dis5k`, checks in :mod:`pdfnet.data.check`) can be used without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ShardSampler": "build",
    "build_dataloader": "build",
    "loader_context": "build",
    "build_datasets": "build",
    "build_eval_dataset": "build",
    "build_train_dataset": "build",
    "set_epoch": "build",
    "shutdown_workers": "build",
    "check_data": "build",
    "DISDataset": "dataset",
    "sample_rng": "dataset",
    "DIS5K_SPLITS": "dis5k",
    "Sample": "dis5k",
    "SplitIndex": "dis5k",
    "available_depths": "dis5k",
    "discover": "dis5k",
    "discover_split": "dis5k",
    "CheckReport": "check",
    "check_splits": "check",
    "DataCheckError": "check",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pdfnet.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pdfnet.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
