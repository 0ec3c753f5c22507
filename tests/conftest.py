"""Test set-up for every module: CPU, 2 threads, seeds, the gpu marker, and fixtures used by several modules
(plain helper functions live in helpers.py)."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from helpers import make_tiny_dav2

from pdfnet.utils.allocator import retain_freed_memory

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """Dataset-check caches go to a temp folder, not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PDFNET_CACHE_DIR", str(tmp_path_factory.mktemp("pdfnet-cache")))
        yield


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random tiny Depth Anything V2 model folder (transformers ``save_pretrained``); read-only."""
    return make_tiny_dav2(tmp_path_factory.mktemp("tiny_dav2"))


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _default_allocator():
    """A test that ran a CPU ``--fast`` path leaves the process-wide allocator mode as it found it."""
    yield
    retain_freed_memory(False)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
