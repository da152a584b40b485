"""Replay a stored answer: its frames rebuilt from the trace, a timeline slider, 0.25×–4×."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox, QDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget,
)

from app.trace import Trace
from app.ui.canvas import CanvasFrame
from app.ui.canvas_panel import CanvasPanel

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
BASE_INTERVAL_MS = 120  # one step per 120 ms at 1×


class ReplayDialog(QDialog):
    def __init__(self, trace: Trace, title: str = "Replay", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.trace = trace
        self.panel = CanvasPanel("Replay")
        self.timeline = QSlider(Qt.Orientation.Horizontal)
        self.timeline.setRange(0, max(0, trace.num_steps - 1))
        self.timeline.setPageStep(max(1, trace.num_steps // 10))
        self.play_button = QPushButton("Play")
        self.speed = QComboBox()
        for value in SPEEDS:
            self.speed.addItem(f"{value:g}×", value)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.position = QLabel()
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(self.timeline, 1)
        controls.addWidget(self.position)
        controls.addWidget(QLabel("Speed"))
        controls.addWidget(self.speed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel, 1)
        layout.addLayout(controls)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._advance)
        self.timeline.valueChanged.connect(self.seek)
        self.play_button.clicked.connect(self.toggle)
        self.speed.currentIndexChanged.connect(self._speed_changed)
        self.resize(760, 420)
        self._speed_changed()
        self.seek(self.timeline.value())

    def canvas_frame(self, k: int) -> CanvasFrame:
        return CanvasFrame.of(self.trace.frame(k), self.trace.pieces_at(k), self.trace.block_length,
                              self.trace.num_steps)

    def seek(self, k: int) -> None:
        self.panel.show_now(self.canvas_frame(k))
        self.position.setText(f"{k + 1}/{self.trace.num_steps}")

    def set_speed(self, speed: float) -> None:
        self.speed.setCurrentIndex(SPEEDS.index(speed))

    def _speed_changed(self) -> None:
        self.timer.setInterval(max(1, round(BASE_INTERVAL_MS / self.speed.currentData())))

    def toggle(self) -> None:
        if self.timer.isActive():
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self.timeline.value() >= self.timeline.maximum():
            self.timeline.setValue(0)
        self.timer.start()
        self.play_button.setText("Pause")

    def pause(self) -> None:
        self.timer.stop()
        self.play_button.setText("Play")

    def _advance(self) -> None:
        if self.timeline.value() >= self.timeline.maximum():
            self.pause()
            return
        self.timeline.setValue(self.timeline.value() + 1)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.timer.stop()
        super().closeEvent(event)
