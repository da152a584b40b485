"""The model worker: one long-lived QThread that owns the backend and the loaded model.

The window talks to it through queued signals only (load, generate) and gets frames, results
and errors back the same way. Stopping is a flag the sampler loop checks between frames, so it
takes effect at the next step; the GUI thread never waits on the model.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.session import conversation
from app.history import trace as trace_mod
from app.session.answer import answer_steps
from app.session.errors import generation_error_message, load_error_message
from app.session.model import LoadedModel, load_model
from app.session.frame_text import TokenPieces
from app.session.settings_logic import CONSTRAINTS_KEY, PICTURE_KEY, sampler_part
from app.session.stats_text import answer_stats
from llada_core.chat import bos_id
from llada_core.constraints import (
    constraints_from_text, infill_canvas, infill_lengths, infill_text,
)

log = logging.getLogger(__name__)


class Worker(QObject):
    """Lives in its own thread; every slot runs there."""

    loading = Signal(str)
    loaded = Signal(dict)           # {"path", "backend", "mask_id", "fingerprint", "base", ...}
    load_failed = Signal(str)
    started = Signal(int, dict)     # request id, {"prompt_ids", "dropped", "reencoded", ...}
    measured = Signal(int, dict)    # ticket, {"used", "limit"} or {"error"}
    frame = Signal(int, object, object)   # request id, StepFrame, per-position text pieces
    finished = Signal(int, dict)    # request id, result
    failed = Signal(int, str)       # request id, message

    def __init__(self):
        super().__init__()
        self.current: Optional[LoadedModel] = None
        self._stopped: set[int] = set()
        self._lock = threading.Lock()
        self.pieces: Optional[TokenPieces] = None  # the loaded model's, masks as ""

    # The loaded model's parts (None when no model is loaded).
    @property
    def model(self) -> Any:
        return self.current.model if self.current else None

    @property
    def tokenizer(self) -> Any:
        return self.current.tokenizer if self.current else None

    @property
    def identity(self) -> Optional[conversation.ModelIdentity]:
        return self.current.identity if self.current else None

    # Called from the GUI thread: only touches a lock-protected set.
    def stop(self, request_id: int) -> None:
        with self._lock:
            self._stopped.add(request_id)

    def _should_stop(self, request_id: int) -> bool:
        with self._lock:
            return request_id in self._stopped

    @Slot(str, object, dict)
    def load(self, path: str, backend_name: Optional[str], options: dict) -> None:
        """Load `path`. The model it replaces is dropped first (two big models rarely fit in
        memory together); when the new one fails, the previous one is loaded again, so a broken
        folder never leaves the app without its working model."""
        loaded = self.current
        previous = (loaded.path, loaded.backend_name, dict(loaded.options)) if loaded else None
        self.loading.emit(path)
        self.unload()
        try:
            self._load(path, backend_name, options)
        except BaseException as error:  # noqa: BLE001 - every failure becomes one message
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            log.exception("loading %s failed", path)
            message = load_error_message(path, error)
            if previous is None:
                self.load_failed.emit(message)
                return
            try:
                self._load(*previous)
            except Exception:  # noqa: BLE001 - the first failure is the one to report
                log.exception("reloading the previous model failed too")
                self.load_failed.emit(message)
                return
            self.load_failed.emit(f"{message} {conversation.model_label(previous[0])} is still "
                                  "loaded.")
            self.loaded.emit({**self.info(), "restored": True})
            return
        self.loaded.emit(self.info())

    def _load(self, path: str, backend_name: Optional[str], options: dict) -> None:
        loaded = load_model(path, backend_name, dtype=options.get("dtype"),
                            device=options.get("device"))
        loaded.options = dict(options)
        self.current = loaded
        self.pieces = TokenPieces(loaded.tokenizer, loaded.mask_id, glyph="")

    def info(self) -> dict:
        return self.current.describe()

    def unload(self) -> None:
        """Drop the model and hand its memory back (Python's cycle collector, then MLX's buffer
        cache or CUDA's allocator), before the next model loads."""
        loaded, self.current, self.pieces = self.current, None, None
        if loaded is not None:
            loaded.release()

    def prompt(self, plan: dict, gen_length: int) -> conversation.Prompt:
        return conversation.build_prompt(self.tokenizer, plan, int(gen_length),
                                         self.current.max_length)

    @Slot(int, dict, int)
    def measure(self, ticket: int, plan: dict, gen_length: int) -> None:
        """How many tokens the prompt for `plan` plus the answer take, against the context."""
        if self.model is None:
            return
        try:
            if plan.get(PICTURE_KEY):  # the picture's positions count too (no pixels prepared)
                ids, _ = self.picture_request(plan, count_only=True)
                prompt = conversation.Prompt(ids=ids, dropped=0, reencoded=True)
            else:
                prompt = self.prompt(plan, gen_length)
        except ValueError as error:
            self.measured.emit(ticket, {"error": str(error), "limit": self.identity.max_length})
            return
        self.measured.emit(ticket, {"used": prompt.total(gen_length),
                                    "limit": self.identity.max_length,
                                    "dropped": prompt.dropped})

    def infill_request(self, text: str, settings: dict) -> tuple:
        """(canvas, prompt, settings, constraints) of filling the holes of `text`: BOS, then the
        text as one block with its holes masked (llada_core.constraints)."""
        canvas = infill_canvas(self.tokenizer, text)
        settings = {**sampler_part(settings), **infill_lengths(canvas, None)}
        bos = bos_id(self.tokenizer)
        return canvas, [bos] if bos is not None else [], settings, canvas.constraints()

    def picture_request(self, plan: dict, *, count_only: bool = False) -> tuple[list[int], list]:
        """(prompt, image spans) of a conversation whose last question is about a picture
        (LLaDA-V); a model without vision or a bad picture is one sentence (ValueError).
        `count_only`: the prompt alone (the context line), the picture's pixels not prepared."""
        from llada_core.chat import encode_image_chat
        from llada_core.vision import ImageSpan, load_image, picture_tokens, prepare_image

        loaded = self.current
        if loaded.vision is None:
            from app.session.pictures import NO_VISION

            raise ValueError(NO_VISION)
        picture = load_image(plan[PICTURE_KEY])
        image = None if count_only else prepare_image(picture, loaded.vision)
        tokens = picture_tokens(picture.size, loaded.vision) if count_only else image.tokens
        prompt, start = encode_image_chat(loaded.tokenizer, plan["turns"], tokens,
                                          loaded.model.placeholder)
        if count_only:
            return prompt, []
        return prompt, [ImageSpan(start, image)]

    @Slot(int, dict, dict)
    def generate(self, request_id: int, plan: dict, settings: dict) -> None:
        from llada_core.chat import answer_text

        if self.model is None:
            self.failed.emit(request_id, "No model is loaded.")
            return
        infill = None
        try:
            images = []
            if "infill" in plan:
                infill, prompt, settings, constraints = self.infill_request(plan["infill"], settings)
                built = conversation.Prompt(ids=prompt, dropped=0, reencoded=False)
                started = {"settings": settings}
            elif plan.get(PICTURE_KEY):
                prompt, images = self.picture_request(plan)
                built = conversation.Prompt(ids=prompt, dropped=0, reencoded=True)
                constraints = constraints_from_text(self.tokenizer,
                                                    settings.get(CONSTRAINTS_KEY, ""))
                started = {}
            else:
                built = self.prompt(plan, settings["gen_length"])
                prompt = built.ids
                constraints = constraints_from_text(self.tokenizer,
                                                    settings.get(CONSTRAINTS_KEY, ""))
                started = {}
            mask_id = self.current.mask_id
            recorder = trace_mod.TraceRecorder(mask_id, int(settings["block_length"]),
                                               trace_mod.fixed_positions(constraints))
            self.started.emit(request_id, {
                "prompt_ids": prompt, "dropped": built.dropped, "reencoded": built.reencoded,
                "used": built.total(settings["gen_length"]),
                "limit": self.identity.max_length,
                "fixed": trace_mod.fixed_positions(constraints), **started})
            begin = time.perf_counter()
            stopped = False
            frames = answer_steps(self.current, prompt, sampler_part(settings),
                                  constraints=constraints, images=images)
            for frame in frames:
                recorder.add(frame)
                self.frame.emit(request_id, frame, self.pieces(frame.tokens))
                if self._should_stop(request_id) and not frame.done:
                    stopped = True
                    frames.close()
                    break
            seconds = time.perf_counter() - begin
        except Exception as error:  # noqa: BLE001 - shown to the user, the app stays usable
            log.exception("answer %s failed", request_id)
            self.failed.emit(request_id, generation_error_message(error))
            return
        finally:
            with self._lock:
                self._stopped.discard(request_id)
        last = recorder.last
        if last is None:
            self.finished.emit(request_id, {"stopped": True, "trace": None, "text": "",
                                            "prompt_ids": prompt, "stats": {}})
            return
        tokens = [int(t) for t in last.tokens]
        pieces = self.pieces(tokens)
        if infill is not None:
            text = infill_text(self.tokenizer, [t for t in tokens if t != mask_id])
        elif stopped:
            text = answer_text(self.tokenizer, [t for t in tokens if t != mask_id])
        else:
            text = answer_text(self.tokenizer, tokens)
        stats = answer_stats(self.tokenizer, tokens, mask_id, steps=last.index + 1,
                             nfe=int(last.nfe), seconds=seconds,
                             step_budget=int(settings["steps"]))
        stats.update(backend=self.current.backend_name, dtype=self.current.dtype_name(),
                     **self.identity.stamp())
        if built.dropped:
            stats["dropped"] = built.dropped
        if infill is not None:
            stats["holes"] = len(infill.holes)
        elif constraints:
            stats["constraints"] = str(settings.get(CONSTRAINTS_KEY, "")).strip()
        if stopped:
            stats["stopped"] = True
        trace = recorder.trace(pieces, unit_of=self.pieces.unit)
        self.finished.emit(request_id, {
            "stopped": stopped, "text": text, "prompt_ids": prompt, "stats": stats,
            "trace": trace_mod.encode(trace)})


class WorkerThread(QObject):
    """Owns the QThread and the worker; the window keeps one for its whole life."""

    request_load = Signal(str, object, dict)
    request_generate = Signal(int, dict, dict)
    request_measure = Signal(int, dict, int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("llada-model-worker")
        self.worker = Worker()
        self.worker.moveToThread(self.thread)
        self.request_load.connect(self.worker.load)
        self.request_generate.connect(self.worker.generate)
        self.request_measure.connect(self.worker.measure)
        self.thread.start()

    def shutdown(self) -> None:
        """Stop the thread and wait for it. A generation stops at its next step, but a model
        load cannot be interrupted, so this can wait for the load to finish: destroying a
        QThread whose thread still runs aborts the whole process."""
        self.thread.quit()
        self.thread.wait()
