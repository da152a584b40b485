"""The line by the composer: how much of the model's context the next prompt and answer take,
and whether the model is a Base one (completion: the text is continued, no roles).

The count is the worker's (it owns the tokenizer), asked for a moment after typing stops."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from app.session import conversation
from app.session.settings_logic import PICTURE_KEY

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

BASE_LINE = ("Base model — completion mode: the text you write is continued as it stands "
             "(no chat roles).")
DEBOUNCE_MS = 300


class ContextLine(QWidget):
    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.window = window
        self.mode = QLabel()
        self.mode.setObjectName("completionMode")
        self.mode.setWordWrap(True)
        self.count = QLabel()
        self.count.setObjectName("contextCount")
        self.count.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 0, 2, 0)
        row.addWidget(self.mode, 1)
        row.addWidget(self.count)
        self._tickets = itertools.count(1)
        self._ticket = 0
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.measure)
        window.workers.worker.measured.connect(self._on_measured)

    def show_model(self, identity: "conversation.ModelIdentity | None") -> None:
        base = identity is not None and identity.base
        self.mode.setText(BASE_LINE if base else "")
        self.window.composer.setPlaceholderText(
            "Text for the model to continue (Enter sends, Shift+Enter for a new line)" if base
            else "Message LLaDA (Enter sends, Shift+Enter for a new line)")
        if identity is None:
            self.count.setText("")
        self.refresh()

    def refresh(self) -> None:
        """Measure again soon (typing, another conversation, other settings)."""
        self.timer.start()

    def measure(self) -> None:
        window = self.window
        if window.identity is None or window.current_id is None or window.generating:
            return
        messages = window.store.messages(window.current_id)
        text = window.composer.toPlainText().strip()
        if not messages and not text:
            self.count.setText(conversation.context_line(0, window.identity.max_length))
            return
        # Nothing typed: what the history takes (a trailing user turn is answered as it is).
        user_text = None if not text and messages[-1].role == "user" else text
        plan = conversation.plan_prompt(messages, user_text, window.fingerprint,
                                        window.generation.answer_ids)
        if window.picture is not None and user_text is not None:
            plan = {"turns": plan["turns"], PICTURE_KEY: window.picture.data}
        self._ticket = next(self._tickets)
        window.workers.request_measure.emit(self._ticket, plan,
                                            int(window.settings_panel.settings()["gen_length"]))

    def _on_measured(self, ticket: int, result: dict) -> None:
        if ticket == self._ticket:
            self.show_result(result)

    def show_request(self, info: dict) -> None:
        """The count of the prompt being answered, and a notice when turns were left out."""
        self._ticket = 0          # a later answer to an earlier question is stale
        self.show_result(info)
        if info.get("dropped"):
            self.window.status.setText(conversation.dropped_notice(info["dropped"]))

    def show_result(self, result: dict) -> None:
        if "error" in result:
            self.count.setText(result["error"])
            self.count.setToolTip("")
            return
        text = conversation.context_line(result["used"], result["limit"])
        if result.get("dropped"):
            text += " — oldest messages left out"
            self.count.setToolTip(conversation.dropped_notice(result["dropped"]))
        else:
            self.count.setToolTip("Prompt and answer, counted against the model's context")
        self.count.setText(text)
