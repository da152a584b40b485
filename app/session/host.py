"""The model host: one long-lived thread that loads a model and runs every answer for it, in the
order asked (MLX streams belong to the thread that made them; two answers at once would only
share the same device). Used by the server; the window's Qt worker is the same idea on a QThread.

A job's frames go to its `deliver` callback from the host thread; setting its `cancelled` event
stops it at the next step. The queue is bounded: past `max_waiting` a job is refused with
HostBusy (the server answers 503 with Retry-After).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from app.session.answer import answer_steps
from app.session.model import LoadedModel
from llada_core.settings import SamplerSettings

log = logging.getLogger(__name__)

MAX_WAITING = 8


class HostBusy(RuntimeError):
    """Too many answers are already waiting for the model."""

    def __init__(self, waiting: int):
        super().__init__(f"{waiting} requests are waiting for the model")
        self.waiting = waiting


@dataclass
class Job:
    prompt_ids: list[int]
    settings: SamplerSettings
    deliver: Callable[[str, Any], None]  # (kind, payload): "frame", "end", "error"
    constraints: Mapping[int, Sequence[int]] = field(default_factory=dict)
    images: Sequence[Any] = ()  # LLaDA-V's pictures (llada_core.vision.ImageSpan)
    cancelled: threading.Event = field(default_factory=threading.Event)
    request_id: str = ""

    def cancel(self) -> None:
        self.cancelled.set()


class ModelHost:
    """Loads the model on its own thread and runs queued jobs there, one at a time.
    `steps_run` and `jobs_cancelled` count what happened."""

    def __init__(self, load: Callable[[], LoadedModel], max_waiting: int = MAX_WAITING):
        self._load = load
        self.max_waiting = max_waiting
        self._jobs: "queue.Queue[Optional[Job]]" = queue.Queue()
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self.loaded: Optional[LoadedModel] = None
        self.steps_run = 0
        self.jobs_cancelled = 0
        self.busy = False
        self._thread = threading.Thread(target=self._main, name="llada-model-host", daemon=True)

    # The loaded model's parts, for the front end that reads the tokenizer or the config.
    @property
    def backend(self) -> Any:
        return self.loaded.backend

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    def start(self) -> None:
        """Start the thread and wait for the model; a failed load is raised here."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def submit(self, job: Job) -> None:
        """Queue a job; HostBusy when `max_waiting` jobs already wait."""
        waiting = self._jobs.qsize()
        if waiting >= self.max_waiting:
            log.warning("request %s refused: %d requests are waiting", job.request_id, waiting)
            raise HostBusy(waiting)
        self._jobs.put(job)

    def stop(self) -> None:
        self._jobs.put(None)

    def _main(self) -> None:
        try:
            self.loaded = self._load()
        except BaseException as error:  # noqa: BLE001 - handed to start()
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self.busy = True
            try:
                self._run(job)
            finally:
                self.busy = False

    def _run(self, job: Job) -> None:
        if job.cancelled.is_set():
            self.jobs_cancelled += 1
            job.deliver("end", None)
            return
        try:
            steps = answer_steps(self.loaded, job.prompt_ids, job.settings,
                                 constraints=job.constraints, images=job.images)
            try:
                for frame in steps:
                    self.steps_run += 1
                    job.deliver("frame", frame)
                    if job.cancelled.is_set():
                        self.jobs_cancelled += 1
                        break
            finally:
                close = getattr(steps, "close", None)
                if close is not None:
                    close()
        except Exception as error:  # noqa: BLE001 - reported to the request that caused it
            log.exception("request %s: the answer failed", job.request_id)
            job.deliver("error", error)
            return
        job.deliver("end", None)
