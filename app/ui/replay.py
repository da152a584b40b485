"""Replay a stored answer in place, inside its own message: its frames rebuilt from the trace on
the message's canvas, a timeline slider to scrub, Play at 0.25×–4×, Done to go back to the text."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QToolButton, QVBoxLayout, QWidget,
)

from app.session.stats_text import pass_caption, start_caption
from app.history.trace import Trace
from app.ui.canvas import CanvasFrame, DenoiseCanvas

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
BASE_INTERVAL_MS = 120  # one step per 120 ms at 1×


def step_details(frame: CanvasFrame) -> str:
    """'pass 3 of up to 8 · block 1/2 · 2 new · 5 masked': what one pass did."""
    if frame.index < 0:
        return start_caption(frame.total_steps, sum(1 for at in frame.committed_at if at < 0),
                             len(frame.committed_at))
    blocks = max(1, len(frame.committed_at) // max(1, frame.block_length))
    new = frame.new_count()
    masked = sum(1 for at in frame.committed_at if at < 0)
    edited = sum(1 for i in range(len(frame.committed_at)) if frame.edited(i) == frame.index)
    return (pass_caption(frame.index, frame.nfe, frame.total_steps, frame.block, blocks)
            + f" · {new} new" + (f" · {edited} edited" if edited else "") + f" · {masked} masked")


def position_history(trace: Trace, position: int) -> str:
    """'Position 5: "the" at pass 3 (0.62) → "a" at pass 7 (0.91, edit)': every token one
    position showed, for a click on a replayed canvas (LLaDA2.1 rewrites tokens it wrote)."""
    shown = trace.history(position)
    if not shown:
        return f"Position {position}: never unmasked"
    words = []
    for number, (step, token, confidence, unit) in enumerate(shown):
        text = (unit.decode("utf-8", "replace") if isinstance(unit, bytes) else unit
                if unit is not None else f"token {token}")
        words.append(f"{text.strip() or '·'!r} at pass {step + 1} ({confidence:.2f}"
                     + (", edit)" if number else ")"))
    return f"Position {position}: " + " → ".join(words)


class ReplayView(QWidget):
    """The canvas and its timeline, put in a message's place while it is replayed."""

    frame_shown = Signal(object)  # CanvasFrame: the step now on the canvas
    closed = Signal()

    def __init__(self, trace: Trace, mode: str = "state", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("replayView")
        self.trace = trace
        self.canvas = DenoiseCanvas()
        self.canvas.set_mode(mode)
        self.details = QLabel()
        self.details.setObjectName("replayDetails")
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.timeline = QSlider(Qt.Orientation.Horizontal)
        self.timeline.setRange(0, max(0, trace.num_steps - 1))
        self.timeline.setPageStep(max(1, trace.num_steps // 10))
        self.timeline.setToolTip("Scrub through the steps")
        self.play_button = QPushButton("Play")
        self.speed = QComboBox()
        for value in SPEEDS:
            self.speed.addItem(f"{value:g}×", value)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.setToolTip("Replay speed")
        self.position = QLabel()
        self.done_button = QToolButton()
        self.done_button.setText("Done")
        self.done_button.setToolTip("Stop replaying and show the answer's text again")
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self.play_button)
        controls.addWidget(self.timeline, 1)
        controls.addWidget(self.position)
        controls.addWidget(self.speed)
        controls.addWidget(self.done_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        layout.addWidget(self.canvas)
        layout.addWidget(self.details)
        layout.addLayout(controls)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._advance)
        self.timeline.valueChanged.connect(self.seek)
        self.play_button.clicked.connect(self.toggle)
        self.speed.currentIndexChanged.connect(self._speed_changed)
        self.done_button.clicked.connect(self.close_replay)
        self.canvas.position_clicked.connect(self.show_history)
        self._speed_changed()
        self.seek(self.timeline.value())

    def canvas_frame(self, k: int) -> CanvasFrame:
        return CanvasFrame.of(self.trace.frame(k), self.trace.pieces_at(k), self.trace.block_length,
                              self.trace.num_steps, self.trace.fixed)

    def seek(self, k: int) -> None:
        frame = self.canvas_frame(k)
        self.canvas.show_now(frame)
        self.position.setText(f"{k + 1}/{self.trace.num_steps}")
        self.details.setText(step_details(frame))
        self.frame_shown.emit(frame)

    def show_history(self, position: int) -> None:
        """A click on a cell: what that position showed, pass by pass (edits included)."""
        self.details.setText(position_history(self.trace, position))

    def set_mode(self, mode: str) -> None:
        self.canvas.set_mode(mode)

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

    def close_replay(self) -> None:
        self.timer.stop()
        self.closed.emit()
