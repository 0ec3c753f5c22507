"""Keep freed heap memory in the process (glibc malloc), so CPU inference stops paying page faults.

A PDFNet forward at 1024² allocates and frees hundreds of large temporaries (512 MB each for a
128-channel full-resolution map). glibc serves every block above its mmap threshold (≤ 32 MB) with a
fresh ``mmap`` and returns it with ``munmap`` on free, so each one is zero-filled page by page by the
kernel when first written: measured on a 2-core VM (docs/benchmarks.md), a process running one warm-up
and three fp32 forwards at 1024² took 24.3 million minor page faults and 53 s of system time. With mmap
switched off and the heap never trimmed, freed blocks are reused by the next allocation (the same
process with ``--fast``: 3.8 million faults and 8.7 s), with the same results (only where the bytes
live changes). The price: the process keeps its peak heap (RSS does not shrink after a large forward) —
right for an inference process, so it is part of the CPU ``--fast`` path
(``FastPathOptions.retain_memory``), and only switched on when asked.

Other allocators (jemalloc, tcmalloc via ``LD_PRELOAD``) do the same job from outside the process; this
needs no install. On anything but glibc (macOS, musl, Windows) the functions do nothing and say so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["retain_freed_memory"]

# mallopt parameters (glibc's malloc.h) and glibc's defaults
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (has ``mallopt`` and ``malloc_trim``), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def retain_freed_memory(enable: bool = True) -> bool:
    """Process-wide: serve large blocks from the heap and keep freed memory for reuse (or undo that).

    Args:
        enable: True: no mmap'ed blocks, no heap trimming. False: glibc's defaults again, and the freed
            heap goes back to the system (``malloc_trim``).

    Returns:
        Whether the setting took effect (False where the C library is not glibc).
    """
    libc = _glibc()
    if libc is None:
        return False
    if enable:
        ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    else:
        ok = libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX) and libc.mallopt(_M_TRIM_THRESHOLD,
                                                                          _DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
    return bool(ok)
