"""``map_shared``: ordered results, caller and pool share the work, errors, early stop."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pdfnet.utils.parallel import map_shared


def _slow_pool(boot_s: float) -> ThreadPoolExecutor:
    # a pool whose worker only starts taking items after boot_s (like a booting process pool)
    return ThreadPoolExecutor(1, initializer=time.sleep, initargs=(boot_s,))


def _work(x: int) -> tuple[int, str]:
    time.sleep(0.005)
    return x * x, threading.current_thread().name


def test_results_in_order_and_work_is_shared():
    items = list(range(40))
    with _slow_pool(0.1) as pool:
        out = list(map_shared(_work, items, pool))
    assert [v for v, _ in out] == [x * x for x in items]
    caller = threading.current_thread().name
    by_caller = [i for i, (_, who) in enumerate(out) if who == caller]
    by_pool = [i for i, (_, who) in enumerate(out) if who != caller]
    # the caller starts at the front while the pool boots; the pool works from the back
    assert by_caller and by_caller[0] == 0
    assert by_pool and by_pool[-1] == len(items) - 1
    assert max(by_caller) + 1 == min(by_pool)  # the caller did a prefix, the pool the rest


def test_every_item_runs_exactly_once():
    calls: list[int] = []
    lock = threading.Lock()

    def fn(x: int) -> int:
        with lock:
            calls.append(x)
        time.sleep(0.001)
        return -x

    with ThreadPoolExecutor(2) as pool:
        assert list(map_shared(fn, list(range(100)), pool)) == [-x for x in range(100)]
    assert sorted(calls) == list(range(100))


def test_error_in_an_item_propagates_and_stops():
    def fn(x: int) -> int:
        if x == 3:
            raise ValueError("bad item 3")
        return x

    with _slow_pool(0.05) as pool:
        gen = map_shared(fn, list(range(50)), pool)
        assert [next(gen) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ValueError, match="bad item 3"):
            next(gen)


def test_early_close_cancels_the_rest():
    ran: list[int] = []

    def fn(x: int) -> int:
        ran.append(x)
        return x

    with _slow_pool(0.2) as pool:
        gen = map_shared(fn, list(range(200)), pool)
        assert next(gen) == 0
        gen.close()
    assert len(ran) < 200  # the pool booted after the close: the queued items were cancelled


def test_a_pool_that_cannot_take_work_is_an_error():
    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shutdown"):
        list(map_shared(_work, list(range(5)), pool))


def test_empty_input():
    with ThreadPoolExecutor(1) as pool:
        assert list(map_shared(_work, [], pool)) == []
