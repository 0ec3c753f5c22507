"""Helpers shared by the test modules (the one place they live: no test module imports another).

``tests/`` has no ``__init__.py``; pytest puts it on ``sys.path``, so a test module does
``from helpers import ...``.

Fixtures: every file a test reads is vendored under ``tests/fixtures/`` (each folder's README says how it was
made). A missing fixture fails the test that needs it; it never skips.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
OFFICIAL = ("pdfnet_official",)


def fixture_path(*parts: str) -> Path:
    """``tests/fixtures/<parts>``; fails the calling test when absent (fixtures are part of the repo)."""
    p = FIXTURES.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"missing test fixture {p.relative_to(REPO)}: it is committed with the repository, "
                    "restore it from git", pytrace=False)
    return p


@functools.cache
def official_fixture() -> ModuleType:
    """``tests/fixtures/pdfnet_official/make_weights.py`` as a module: ``official_state_dict(keys, seed)``
    (synthetic weights in the official release's state_dict layout) and ``make_inputs(seed, size)``."""
    path = fixture_path(*OFFICIAL, "make_weights.py")
    spec = importlib.util.spec_from_file_location("pdfnet_fixture_make_weights", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def official_keys_path() -> Path:
    """``keys.tsv``: every key of the official state_dict (key, shape, dtype, kind), in order."""
    return fixture_path(*OFFICIAL, "keys.tsv")


def official_expected(size: int, seed: int = 0):
    """The official release's outputs and losses for the synthetic case (``np.load`` of the npz)."""
    return np.load(fixture_path(*OFFICIAL, f"expected_S{size}_seed{seed}.npz"))
