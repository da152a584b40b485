"""Python's cyclic garbage collector, run on the GUI thread only.

The collector runs on whichever thread happens to allocate. When that is the model worker and
the garbage holds Qt objects (a closed dialog in a reference cycle), Qt destroys them off the
GUI thread and the process can crash. The window therefore turns automatic collection off and
collects, by the same generation thresholds, from a timer on the GUI thread.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


def collect_due_generations() -> int:
    """One collection of the oldest generation past its threshold, as gc would; returns the
    generation collected, or -1."""
    thresholds, counts = gc.get_threshold(), gc.get_count()
    for generation in (2, 1, 0):
        if thresholds[generation] and counts[generation] > thresholds[generation]:
            gc.collect(generation)
            return generation
    return -1


def collect_on_gui_thread(parent: QObject, interval_ms: int = 500) -> QTimer:
    """Call from the GUI thread once the QApplication exists."""
    gc.disable()
    timer = QTimer(parent)
    timer.setObjectName("gc-on-gui-thread")
    timer.timeout.connect(collect_due_generations)
    timer.start(interval_ms)
    return timer
