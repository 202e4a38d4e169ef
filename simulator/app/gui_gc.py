"""Python's cycle collector runs on the GUI thread only, while the app runs.

Qt objects caught in reference cycles (a window whose slots close over it, a finished
worker thread) are freed by the cycle collector, and the collector runs in whichever thread
happens to allocate past its threshold: in this app often a replay's or a preview's worker
thread. A widget destroyed off the GUI thread corrupts Qt's state and crashes the process
later, far from the cause (a segmentation fault while the GUI thread processes events). So
while the app runs, automatic collection is off and a GUI-thread timer collects by the same
thresholds Python would use.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from PyQt6.QtCore import QTimer

CHECK_MS = 500  # how often the GUI thread looks at the collector's counts


def collect_due() -> int | None:
    """Collect the oldest generation whose count passed its threshold (what automatic
    collection would have done); returns that generation, None when none was due."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    due = [g for g in range(len(thresholds)) if thresholds[g] and counts[g] > thresholds[g]]
    if not due:
        return None
    gc.collect(due[-1])
    return due[-1]


@contextmanager
def collect_on_gui_thread() -> Iterator[None]:
    """Within the block (entered on the GUI thread, with a QApplication) cycles are collected
    by a GUI-thread timer only; on leaving, one full collection there, and automatic
    collection back as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    timer = QTimer()
    timer.timeout.connect(collect_due)
    timer.start(CHECK_MS)
    try:
        yield
    finally:
        timer.stop()
        gc.collect()
        if was_enabled:
            gc.enable()
