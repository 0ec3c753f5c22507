"""pdfnet.utils.allocator: freed memory stays in the process (no page faults when it is reused)."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest
import torch

from pdfnet.utils.allocator import _glibc

pytestmark = pytest.mark.skipif(_glibc() is None, reason="needs glibc (mallopt)")

# Run in a fresh interpreter: the heap of the test process holds whatever earlier tests left there.
PROBE = """
import resource, sys, torch
from pdfnet.utils.allocator import retain_freed_memory

def faults(nbytes, warmup=10, cycles=5):
    # minor page faults of `cycles` allocate-write-free rounds of one block, after `warmup` rounds (the
    # heap first grows until a freed block fits the allocator's aligned request, as in a first forward)
    for _ in range(warmup):
        torch.empty(nbytes // 4).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(cycles):
        torch.empty(nbytes // 4).fill_(2.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = faults(64 << 20)
assert retain_freed_memory(True)
retained = faults(64 << 20)
print(default, retained)
"""


def test_retained_memory_is_reused_without_page_faults():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    default, retained = map(int, out.split())
    pages = (64 << 20) // resource.getpagesize()
    print(f"faults, 5 reuses of a 64 MB block: default {default}, retained {retained} ({pages} pages each)")
    assert default > 4 * pages  # glibc mmaps blocks this large: every page of every block faults again
    assert retained < pages // 2


def test_fast_path_of_the_cpu_turns_it_on(monkeypatch):
    from pdfnet.inference import fast

    calls = []
    monkeypatch.setattr(fast, "retain_freed_memory", calls.append)
    monkeypatch.setattr(fast, "set_fast_upconv", lambda *a: None)
    opts = fast.FastPathOptions.best_for("cpu")
    assert opts.retain_memory and not fast.FastPathOptions.best_for("cuda").retain_memory
    fast.apply_fast_path(torch.nn.Conv2d(1, 1, 1), opts)
    assert calls == [True]
