"""Process pools that are safe to start from a process with running OpenCV/torch/BLAS threads.

A plain ``fork`` copies a process whose thread pools are mid-flight; the child can then block for ever
in a futex (seen with OpenCV's pool after ``cv2`` was used in the parent). ``forkserver`` (with the
worker's module preloaded, so workers start fast) or ``spawn`` never forks such a process.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TypeVar

import cv2

T = TypeVar("T")
R = TypeVar("R")


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


def map_shared(fn: Callable[[T], R], items: Sequence[T], pool: Executor) -> Iterator[R]:
    """``fn`` over ``items``, results in order; the pool works from the back, this process from the front.

    A helper thread submits the items to ``pool`` from the last one backwards (the first submission blocks
    while the pool boots: ~0.2 s for a forkserver pool). Meanwhile this process runs ``fn`` itself on the
    items from the front; once an item has been submitted, it still takes it when no worker has started it
    (the future can be cancelled) and otherwise waits for the worker's result. So no time is lost while the
    pool boots and the caller's core works too. ``fn`` must be picklable and safe to run in this process.
    Futures not consumed are cancelled when the generator is closed or an item raises.
    """
    n = len(items)
    cond = threading.Condition()
    futures: list[Future | None] = [None] * n
    # the caller owns items [0, front), the submitter has reserved items [back, n)
    state: dict = {"front": 0, "back": n, "stop": False, "error": None}

    def submit_backwards() -> None:
        while True:
            with cond:
                j = state["back"] - 1
                if j < state["front"] or state["stop"]:
                    return
                state["back"] = j
            try:
                fut = pool.submit(fn, items[j])
            except BaseException as e:  # handed to the caller, who raises it
                with cond:
                    state["error"] = e
                    cond.notify_all()
                return
            with cond:
                futures[j] = fut
                cond.notify_all()

    thread = threading.Thread(target=submit_backwards, name="map_shared-submit", daemon=True)
    thread.start()
    try:
        for i in range(n):
            with cond:
                if i < state["back"]:
                    state["front"] = i + 1
                    fut = None
                else:
                    while futures[i] is None and state["error"] is None:
                        cond.wait()
                    fut = futures[i]
                    if fut is None:
                        raise state["error"]
            yield fn(items[i]) if fut is None or fut.cancel() else fut.result()
    finally:
        with cond:
            state["stop"] = True
        thread.join()
        for fut in futures:
            if fut is not None:
                fut.cancel()
