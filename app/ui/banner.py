"""An inline message above the transcript: errors and notices, never a traceback."""

from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

COLOURS = {"error": ("#f8d7da", "#58151c"), "info": ("#dbe9fb", "#0b2d5b")}


class Banner(QWidget):
    def __init__(self, parent: QWidget | None = None, name: str = "banner"):
        super().__init__(parent)
        self.setObjectName(name)
        self.kind = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton()
        self.action.setObjectName("bannerAction")
        self.action.hide()
        self._action_callback: Optional[Callable[[], object]] = None
        self.action.clicked.connect(self._act)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        row.addWidget(self.label, 1)
        row.addWidget(self.action)
        row.addWidget(close)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.hide()

    def _act(self) -> None:
        if self._action_callback is not None:
            self._action_callback()

    def show_message(self, text: str, kind: str = "error", action: tuple | None = None) -> None:
        """Show `text` (plain text, never interpreted); `action` is an optional
        (button label, callback)."""
        self._action_callback = action[1] if action else None
        self.action.setText(action[0] if action else "")
        self.action.setVisible(action is not None)
        background, foreground = COLOURS.get(kind, COLOURS["info"])
        name = self.objectName()
        self.setStyleSheet(f"#{name} {{ background: {background}; border-radius: 6px; }}"
                           f" #{name} QLabel {{ color: {foreground}; }}"
                           f" #{name} QToolButton {{ color: {foreground}; }}")
        self.kind = kind
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()
