"""Slowing answers down for tests that must act mid-answer (stop, kill, watch progress): a
backend wrapper that pauses after each denoising step. Pacing is the tests' business; the app has
no delay setting of its own."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, Optional


class PacedBackend:
    """The real backend, pausing `delay` seconds after each step of an answer; with `mark`, the
    number of steps taken so far is written to that file after each one (what a test in another
    process waits on)."""

    def __init__(self, backend: Any, delay: float, mark: Optional[Path] = None):
        self.backend, self.delay, self.mark = backend, delay, mark
        self.steps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate_steps(self, model: Any, prompt_ids: Any, **settings: Any) -> Iterator[Any]:
        for frame in self.backend.generate_steps(model, prompt_ids, **settings):
            yield frame
            self.steps += 1
            if self.mark is not None:
                self.mark.write_text(str(self.steps))
            time.sleep(self.delay)


def pace(loaded: Any, delay: float, mark: Optional[Path] = None) -> None:
    """Pace every later answer of a loaded model (app.session.model.LoadedModel)."""
    if delay and not isinstance(loaded.backend, PacedBackend):
        loaded.backend = PacedBackend(loaded.backend, delay, mark)
