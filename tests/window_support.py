"""What the window tests share: opening MainWindows on a store and closing them, collecting the
garbage of earlier windows on the GUI thread, and a backend that fails mid-answer."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Optional

import pytest

from app.history.store import Store
from app.ui.main_window import MainWindow
from backend_choice import BACKEND
from pacing import pace

LOAD_TIMEOUT = 120_000
SHOTS = Path(__file__).resolve().parents[1] / "out"   # screenshots for a person to look at


def shot(widget, name: str) -> Path:
    """Grab `widget` into out/NAME (git ignores out/)."""
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / name
    assert widget.grab().save(str(path))
    return path


@pytest.fixture(autouse=True)
def collect_earlier_windows():
    """Windows of earlier tests are garbage in reference cycles (signals, controllers): collect
    them now, so that each test starts without them."""
    gc.collect()


class Windows:
    """Opens windows on the installed backend (CPU for torch) and closes them all at the end."""

    def __init__(self, qtbot, data: Path):
        self.qtbot, self.data = qtbot, data
        self.made: list[tuple[MainWindow, Store]] = []

    def open(self, model: Optional[str], *, settings: Optional[dict] = None,
             step_delay: float = 0.0, data: Optional[Path] = None, wait: bool = True,
             **options) -> MainWindow:
        store = Store.in_folder(data or self.data)
        window = MainWindow(store, model=model, backend=BACKEND, load_options={"device": "cpu"},
                            default_settings=settings, **options)
        self.qtbot.addWidget(window)
        self.made.append((window, store))
        if wait and model:
            with self.qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT):
                pass
        if step_delay:  # answers slowed down (tests/pacing.py), for tests that act mid-answer
            if window.workers.worker.current is not None:
                pace(window.workers.worker.current, step_delay)
            else:  # still loading: pace it once it is loaded
                window.model_loaded.connect(
                    lambda *_: pace(window.workers.worker.current, step_delay))
        return window

    def close_all(self) -> None:
        for window, store in self.made:
            window.shutdown()
            store.close()


class FailsAfterFirstStep:
    """The loaded backend, except that every answer raises `error` after its first step."""

    def __init__(self, backend, error: BaseException):
        self.backend, self.error = backend, error

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def generate_steps(self, *args, **kwargs):
        for frame in self.backend.generate_steps(*args, **kwargs):
            yield frame
            raise self.error
