"""Generation requests: what the window asked the worker for, and what becomes of the answer.

One request at a time. The user's message is stored when it is sent (a crash keeps it); an
answer that fails, or is stopped before its first step, takes its user message back out of the
history and puts the text back in the composer, so nothing is left half-answered and a retry is
one Enter away. A regenerated answer replaces the old one only when it is stored.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import TYPE_CHECKING, Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication

from app.session import conversation
from app.history import export as export_mod
from app.history import trace as trace_mod
from app.session.settings_logic import (
    CONSTRAINTS_KEY, PICTURE_KEY, check_constraints_text, sampler_part,
)
from app.history.store import StoreError
from app.session.pictures import Picture
from llada_core.constraints import parse_infill
from app.ui.canvas import CanvasFrame
from llada_core.settings import SamplerSettings

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


# In a question's stored settings: it was a text to fill, not a chat message.
INFILL_KEY = "infill"



log = logging.getLogger(__name__)


def asked_about_picture(message) -> bool:
    """Whether a question came with a picture (stored with it, or, before pictures were
    stored, named by its path in the question's settings)."""
    return message.has_picture or bool(message.settings.get(PICTURE_KEY))


class Generation(QObject):
    answer_stored = Signal(int)           # message id
    failed = Signal(str)
    frame_received = Signal(int, object)  # request id, StepFrame

    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.window = window
        self.request: Optional[dict] = None
        self._ids = itertools.count(1)
        worker = window.workers.worker
        worker.started.connect(self._on_started)
        worker.frame.connect(self._on_frame)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)

    @property
    def busy(self) -> bool:
        return self.request is not None

    def answer_ids(self, message) -> Optional[list[int]]:
        blob = self.window.store.trace_blob(message.id)
        try:
            return trace_mod.decode(blob).tokens if blob else None
        except ValueError:
            return None

    # --- starting --------------------------------------------------------------------------
    def check_settings(self, settings: dict) -> bool:
        try:
            SamplerSettings(**sampler_part(settings))
            check_constraints_text(settings.get(CONSTRAINTS_KEY, ""), settings["gen_length"])
        except ValueError as error:
            self.window.banner.show_message(f"These settings cannot be used: {error}", "error")
            return False
        return True

    def check_infill(self, text: str, settings: dict) -> bool:
        """A text to fill needs a hole; its lengths come from the text (the worker sets them)."""
        try:
            parse_infill(text)
            SamplerSettings(**{**sampler_part(settings), "gen_length": 1, "block_length": 1,
                               "steps": 1})
        except ValueError as error:
            self.window.banner.show_message(f"This text cannot be filled: {error}", "error")
            return False
        return True

    def send(self, conversation_id: int, text: str, settings: dict, *, infill: bool = False,
             picture: Optional[Picture] = None) -> None:
        store = self.window.store
        earlier = store.messages(conversation_id)
        if infill:
            # The canvas is the text itself after BOS; no conversation history goes in.
            plan = {"infill": text}
            settings = sampler_part(settings)
        else:
            plan = conversation.plan_prompt(earlier, text, self.window.fingerprint,
                                            self.answer_ids)
            if picture:  # LLaDA-V: the picture before this question (the worker reads it)
                plan = {"turns": plan["turns"], PICTURE_KEY: picture.data}
            elif any(asked_about_picture(m) for m in earlier if m.role == "user"):
                plan = {"turns": plan["turns"]}  # re-encoded: see with_pictures
        # the question keeps the settings it was asked with: a Retry after a crash uses them
        asked = {**settings, INFILL_KEY: True} if infill else settings
        user_id = store.add_message(conversation_id, "user", text, settings=asked,
                                    picture=picture)
        self.start(conversation_id, plan, settings, user_message=(user_id, text))

    def retry(self, conversation_id: int, settings: dict) -> bool:
        """Ask again the question whose answer a crash or a kill lost, with the settings it
        was asked with (`settings` for a question stored without them)."""
        messages = self.window.store.messages(conversation_id)
        question = conversation.interrupted_question(messages)
        if question is None:
            return False
        asked = dict(question.settings) or dict(settings)
        asked.pop(PICTURE_KEY, None)
        if asked.pop(INFILL_KEY, False):
            plan, asked = {"infill": question.text}, sampler_part(asked)
        else:
            plan = self.with_pictures(
                conversation.plan_regenerate(messages, None, self.window.fingerprint), messages)
        if not self.check_settings(asked):
            return False
        self.start(conversation_id, plan, asked)
        return True

    def regenerate(self, conversation_id: int, settings: dict) -> bool:
        messages = self.window.store.messages(conversation_id)
        old = messages[-1] if messages and messages[-1].role == "assistant" else None
        earlier = messages[:-1] if old is not None else messages
        if not earlier or earlier[-1].role != "user":
            return False
        plan = self.with_pictures(conversation.plan_regenerate(earlier, old, self.window.fingerprint),
                                  earlier)
        self.start(conversation_id, plan, settings, replaces=old.id if old else None)
        return True

    def with_pictures(self, plan: dict, messages: list) -> dict:
        """A plan that asks the last question again, with its picture (LLaDA-V); a conversation
        with an earlier picture is re-encoded from its text (its stored ids hold the picture's
        placeholder positions, which mean nothing without it)."""
        question = messages[-1]
        picture = question.settings.get(PICTURE_KEY)  # a file path, as questions stored it before
        if question.has_picture:
            stored = self.window.store.picture(question.id)
            picture = stored.data if stored is not None else picture
        if picture:
            return {"turns": plan["turns"], PICTURE_KEY: picture}
        if any(asked_about_picture(m) for m in messages if m.role == "user"):
            return {"turns": plan["turns"]}
        return plan

    def start(self, conversation_id: int, plan: dict, settings: dict, *,
              user_message: Optional[tuple[int, str]] = None,
              replaces: Optional[int] = None) -> None:
        request_id = next(self._ids)
        self.request = {"id": request_id, "conversation_id": conversation_id,
                        "settings": settings, "frames": 0, "started": time.time(),
                        "user_message": user_message, "replaces": replaces}
        window = self.window
        window.live.clear("Denoising — starting…")
        window.canvas_trace = None  # the canvas shows this answer now
        window.transcript.begin_live()  # the answer denoises in place, in its own message
        window.transcript.set_live_visible(conversation_id == window.current_id)
        window.set_busy(True)
        window.status.setText("Regenerating…" if replaces else "Generating…")
        window.workers.request_generate.emit(request_id, plan, settings)

    def stop(self) -> None:
        if self.request is not None:
            self.window.workers.worker.stop(self.request["id"])
            self.window.status.setText("Stopping at the next step…")
            self.window.set_stopping()

    def _current(self, request_id: int) -> bool:
        return self.request is not None and self.request["id"] == request_id

    # --- from the worker -------------------------------------------------------------------
    def _on_started(self, request_id: int, info: dict) -> None:
        if not self._current(request_id):
            return
        self.request["prompt_ids"] = info["prompt_ids"]
        self.request["fixed"] = info.get("fixed", [])
        if "settings" in info:  # an infilling: lengths from the text
            self.request["settings"] = info["settings"]
        self.window.context.show_request(info)

    def _on_frame(self, request_id: int, frame, pieces) -> None:
        if not self._current(request_id):
            return
        self.request["frames"] += 1
        settings = self.request["settings"]
        shown = CanvasFrame.of(frame, pieces, settings["block_length"], settings["steps"],
                               self.request.get("fixed", ()))
        self.window.live.set_frame(shown)
        self.window.transcript.live_frame(shown)
        self.frame_received.emit(request_id, frame)

    def _on_finished(self, request_id: int, result: dict) -> None:
        if not self._current(request_id):
            return
        request, self.request = self.request, None
        window = self.window
        window.live.canvas.flush()
        window.transcript.end_live()
        window.set_busy(False)
        store = window.store
        if store.conversation(request["conversation_id"]) is None:
            window.status.setText("The conversation was deleted; the answer was not kept.")
            return
        if result.get("trace") is None:
            self._take_back(request)
            window.status.setText("Stopped before the first step; nothing was kept.")
            return
        try:
            message_id = store.add_message(
                request["conversation_id"], "assistant", result["text"],
                settings=request["settings"], stats=result["stats"],
                prompt_ids=result["prompt_ids"], trace=result["trace"],
                replaces=request["replaces"])
        except StoreError as error:     # locked or unusable history: say so, keep the text
            log.warning("the answer could not be stored", exc_info=True)
            QGuiApplication.clipboard().setText(result["text"])
            window.banner.show_message(
                f"{error} The answer was not saved; its text is on the clipboard.", "error")
            window.status.setText("The answer was not saved.")
            if request["conversation_id"] == window.current_id:
                window.show_messages()
            return
        line = export_mod.stats_line(result["stats"])  # a stopped one starts "stopped after pass k"
        window.status.setText(line[:1].upper() + line[1:] if result["stopped"] else f"Done: {line}")
        if request["conversation_id"] == window.current_id:
            window.show_messages()
        window.refresh_conversations()
        window.context.refresh()
        self.answer_stored.emit(message_id)

    def _on_failed(self, request_id: int, message: str) -> None:
        if not self._current(request_id):
            return
        request, self.request = self.request, None
        window = self.window
        window.transcript.end_live()
        window.set_busy(False)
        self._take_back(request)
        window.banner.show_message(message, "error")
        window.status.setText("The answer failed" + (
            "; your message is back in the box below." if request["user_message"] else "."))
        self.failed.emit(message)

    def _take_back(self, request: dict) -> None:
        """Remove the user message this request would have answered and give its text back
        (a retried question stays, and so does its notice)."""
        if not request["user_message"]:
            if request["conversation_id"] == self.window.current_id:
                self.window.show_messages()
            return
        message_id, text = request["user_message"]
        window = self.window
        window.store.delete_message(message_id)
        if request["conversation_id"] == window.current_id:
            window.show_messages()
            if not window.composer.toPlainText().strip():
                window.composer.setPlainText(text)
        window.refresh_conversations()
