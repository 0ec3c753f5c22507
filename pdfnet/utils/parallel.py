"""Process pools that are safe to start from a process with running OpenCV/torch/BLAS threads.

A plain ``fork`` copies a process whose thread pools are mid-flight; the child can then block for ever
in a futex (seen with OpenCV's pool after ``cv2`` was used in the parent). ``forkserver`` (with the
worker's module preloaded, so workers start fast) or ``spawn`` never forks such a process.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import cv2


def mp_context(preload: Sequence[str] = ()) -> mp.context.BaseContext:
    """``forkserver`` with ``preload`` modules imported in the server where available, else ``spawn``."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx
    return mp.get_context("spawn")


def single_threaded_cv2() -> None:
    """Worker initializer: one OpenCV thread per worker process (the pool supplies the parallelism)."""
    cv2.setNumThreads(1)


def process_pool(workers: int, preload: Sequence[str] = (),
                 initializer: Callable[[], None] | None = single_threaded_cv2) -> ProcessPoolExecutor:
    """A :class:`ProcessPoolExecutor` on :func:`mp_context`; use it as a context manager."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp_context(preload), initializer=initializer)
