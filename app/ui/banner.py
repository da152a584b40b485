"""An inline message above the transcript: errors and notices, never a traceback."""

from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

# (background, text) per kind, for a light and for a dark window.
COLOURS = {"error": ("#f8d7da", "#58151c"), "info": ("#dbe9fb", "#0b2d5b")}
DARK_COLOURS = {"error": ("#4a1f24", "#ffd9dc"), "info": ("#1c3150", "#d7e6fb")}


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


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
        application = QGuiApplication.instance()
        if application is not None:
            application.paletteChanged.connect(self.follow_palette)
            scheme = getattr(QGuiApplication.styleHints(), "colorSchemeChanged", None)
            if scheme is not None:
                scheme.connect(self.follow_palette)
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
        self.kind = kind
        self._paint_colours()
        self.label.setText(text)
        self.show()

    def colours(self) -> tuple[str, str]:
        """(background, text) for this banner's kind in the window's light or dark palette."""
        # The application's palette: the banner's own holds its style sheet's background.
        table = DARK_COLOURS if is_dark(QGuiApplication.palette()) else COLOURS
        return table.get(self.kind, table["info"])

    def _paint_colours(self) -> None:
        background, foreground = self.colours()
        name = self.objectName()
        sheet = (f"#{name} {{ background: {background}; border-radius: 6px; }}"
                 f" #{name} QLabel {{ color: {foreground}; }}"
                 f" #{name} QToolButton {{ color: {foreground}; }}")
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)

    def follow_palette(self, *_args) -> None:
        """The OS switched between light and dark (a widget with a style sheet gets no palette
        events, so the application's signals call this)."""
        if self.kind:
            self._paint_colours()

    def clear_error(self) -> None:
        """The cause of an error shown here is gone: the error goes too (notices stay)."""
        if self.kind == "error" and not self.isHidden():
            self.hide()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()
