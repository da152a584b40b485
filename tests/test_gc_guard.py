"""Garbage is collected on the GUI thread, never by the model worker (app/ui/gc_guard.py)."""

from __future__ import annotations

import gc
import weakref

from app.ui.gc_guard import collect_due_generations, collect_on_gui_thread


class Node:
    def __init__(self):
        self.me = self


def test_automatic_collection_moves_to_a_gui_timer(qtbot):
    from PySide6.QtCore import QObject

    parent = QObject()
    try:
        timer = collect_on_gui_thread(parent, interval_ms=10)
        assert not gc.isenabled() and timer.isActive()
        gc.collect()
        node = Node()
        alive = weakref.ref(node)
        del node
        ballast = [[] for _ in range(gc.get_threshold()[0] + 10)]  # enough to make gen 0 due
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        qtbot.waitUntil(lambda: alive() is None and gone() is None, timeout=5000)
        assert len(ballast) > 0
    finally:
        gc.enable()
        parent.deleteLater()


def test_nothing_is_collected_before_it_is_due():
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        assert collect_due_generations() == -1
    finally:
        if enabled:
            gc.enable()


def test_a_model_switch_collects_on_the_gui_thread_and_frees_the_model(qtbot, monkeypatch,
                                                                       tiny_checkpoint):
    """The worker drops the model without collecting (the garbage may hold the window's Qt
    objects); the GUI thread collects, and the dropped model is freed even if a cycle held it."""
    import threading

    from app.worker import WorkerThread
    from tests.backend_choice import BACKEND

    collected_on: list[str] = []
    real_collect = gc.collect

    def spy(*args):
        collected_on.append(threading.current_thread().name)
        return real_collect(*args)

    monkeypatch.setattr(gc, "collect", spy)
    worker = WorkerThread()
    try:
        with qtbot.waitSignal(worker.worker.loaded, timeout=60000):
            worker.request_load.emit(str(tiny_checkpoint), BACKEND, {})
        first = worker.worker.model
        first.held_by_a_cycle = [first]  # only the cycle collector can free it now
        dropped = weakref.ref(first)
        del first
        collected_on.clear()
        with qtbot.waitSignal(worker.worker.loaded, timeout=60000):
            worker.request_load.emit(str(tiny_checkpoint), BACKEND, {})
        qtbot.waitUntil(lambda: dropped() is None, timeout=5000)
        assert collected_on and set(collected_on) == {threading.main_thread().name}
    finally:
        worker.shutdown()
