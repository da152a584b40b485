"""Example prompts as clickable chips: the empty chat's and the welcome page's."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

CHIP_STYLE = ("QPushButton#examplePrompt { border: 1px solid palette(mid); border-radius: 12px;"
              " padding: 4px 12px; }"
              " QPushButton#examplePrompt:hover { background: palette(midlight); }")


class ExamplePrompts(QWidget):
    """A caption and one chip per prompt; clicking a chip emits its prompt."""

    chosen = Signal(str)

    def __init__(self, caption: str = "Try:", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("examplePrompts")
        self.caption = QLabel(caption)
        self.caption.setStyleSheet("color: palette(placeholder-text);")
        self.row = QHBoxLayout()
        self.row.setSpacing(6)
        self.row.addStretch(1)  # chips go between the two stretches: centred
        self.row.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.caption, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addLayout(self.row)
        self.buttons: list[QPushButton] = []
        self.setStyleSheet(CHIP_STYLE)
        self.hide()

    def set_prompts(self, prompts: list[str]) -> None:
        for button in self.buttons:
            self.row.removeWidget(button)
            button.deleteLater()
        self.buttons = []
        for prompt in prompts:
            button = QPushButton(prompt)
            button.setObjectName("examplePrompt")
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setToolTip(f"Send “{prompt}”")
            button.clicked.connect(lambda _=False, text=prompt: self.chosen.emit(text))
            self.row.insertWidget(self.row.count() - 1, button)
            self.buttons.append(button)
        self.setVisible(bool(prompts))

    def prompts(self) -> list[str]:
        return [button.text() for button in self.buttons]
