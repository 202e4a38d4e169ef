"""Cycles are collected on the GUI thread only while the app runs (simulator/app/gui_gc.py)."""

from __future__ import annotations

import gc
import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from simulator.app.gui_gc import collect_due, collect_on_gui_thread

freed_on: list[int] = []  # the threads _Cycle objects were freed on


class _Cycle:
    """An object in a reference cycle that notes the thread it was freed on."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        freed_on.append(threading.get_ident())


def _garbage_made_on_a_worker_thread() -> None:
    def work() -> None:
        _Cycle()  # garbage at once: only the cycle collector can free it
        # kept containers, well past the threshold: a collection is due on this thread
        kept = [[] for _ in range(20 * gc.get_threshold()[0])]
        assert kept

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_a_cycle_made_on_a_worker_thread_is_freed_on_the_gui_thread(qapp) -> None:
    freed_on.clear()
    assert not gc.isenabled()  # the test runs as the app does (tests/conftest.py)
    _garbage_made_on_a_worker_thread()
    assert freed_on == []  # the worker's allocations collected nothing
    while collect_due() is not None:
        pass
    gc.collect()
    assert freed_on == [threading.get_ident()]


def test_without_the_guard_the_worker_thread_frees_it() -> None:
    """The hazard itself: with automatic collection, a worker thread frees the cycle."""
    freed_on.clear()
    assert gc.isenabled()
    _garbage_made_on_a_worker_thread()
    assert len(freed_on) == 1 and freed_on[0] != threading.get_ident()


def test_leaving_the_block_collects_and_restores_automatic_collection(qapp) -> None:
    freed_on.clear()
    with collect_on_gui_thread():
        assert not gc.isenabled()
        _Cycle()
    assert freed_on == [threading.get_ident()]
    assert not gc.isenabled()  # as it was: off for this qapp test (tests/conftest.py)
