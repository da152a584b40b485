"""The inspector (View ▸ Inspector): the canvas with its caption (pass of up to the step budget,
block), the colour-mode picker and the legend, and per-pass details (what the pass committed, how
sure; EOS padding counted apart)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from app.session.stats_text import pass_caption, start_caption
from app.ui.canvas import MODES, CanvasFrame, DenoiseCanvas

LEGENDS = {
    "state": "grey ░ masked · yellow new this pass · plain earlier · dotted EOS padding · "
             "purple edited (underlined after)",
    "confidence": "new this pass: red < 0.3 · orange < 0.7 · green ≥ 0.7 · blue earlier · "
                  "purple edited",
    "reveal": "light → dark blue: revealed early → late",
}


class CanvasPanel(QWidget):
    mode_changed = Signal(str)

    def __init__(self, title: str = "Denoising", parent: QWidget | None = None):
        super().__init__(parent)
        self.canvas = DenoiseCanvas()
        self.caption = QLabel(title)
        self.caption.setObjectName("canvasCaption")
        # Long captions wrap inside the panel instead of widening it past the window's edge.
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.caption.setMinimumWidth(1)
        self.title = title
        self.mode = QComboBox()
        for key, label in MODES.items():
            self.mode.addItem(label, key)
        self.mode.setToolTip("Colour mode")
        self.legend = QLabel(LEGENDS["state"])
        self.legend.setObjectName("canvasLegend")
        font = self.legend.font()
        font.setPointSizeF(font.pointSizeF() * 0.85)
        self.legend.setFont(font)
        self.legend.setWordWrap(True)
        top = QHBoxLayout()  # the legend and the picker; the caption has a row of its own
        top.addWidget(self.legend, 1)
        top.addWidget(self.mode)
        self.details = QLabel()
        self.details.setObjectName("canvasDetails")
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setWordWrap(True)
        self.details.setFont(font)
        self.details.setMinimumWidth(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.canvas)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addLayout(top)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.details)
        self.mode.currentIndexChanged.connect(self._mode_changed)

    def _mode_changed(self, _index: int) -> None:
        key = self.mode.currentData()
        self.canvas.set_mode(key)
        self.legend.setText(LEGENDS[key])
        self.mode_changed.emit(key)

    def set_mode(self, key: str) -> None:
        self.mode.setCurrentIndex(list(MODES).index(key))

    def describe(self, frame: CanvasFrame) -> None:
        blocks = max(1, len(frame.committed_at) // max(1, frame.block_length))
        self.caption.setText(f"{self.title} — " + (
            start_caption(frame.total_steps, masked_count(frame), len(frame.committed_at))
            if frame.index < 0 else
            pass_caption(frame.index, frame.nfe, frame.total_steps, frame.block, blocks)))
        self.details.setText(step_report(frame))

    def clear(self, caption: str = "") -> None:
        """Nothing running and nothing to show: no frame, the title (or `caption`), no details
        left over from an earlier answer."""
        self.canvas.clear()
        self.caption.setText(caption or self.title)
        self.details.setText("")

    def set_frame(self, frame: CanvasFrame) -> None:
        self.canvas.set_frame(frame)
        self.describe(frame)

    def show_now(self, frame: CanvasFrame) -> None:
        self.canvas.show_now(frame)
        self.describe(frame)


def masked_count(frame: CanvasFrame) -> int:
    return sum(1 for at in frame.committed_at if at < 0)


def step_report(frame: CanvasFrame, shown: int = 8) -> str:
    """What one pass did: how many tokens it committed, how sure it was of each (the most sure
    first), and how many masks are left."""
    new = [i for i in range(len(frame.committed_at)) if frame.is_new(i)]
    padding = [i for i in new if frame.is_padding(i)]
    new = [i for i in new if i not in padding]
    masked = sum(1 for at in frame.committed_at if at < 0)
    if frame.index < 0:
        return f"{masked} positions masked"
    new.sort(key=lambda i: -frame.confidence[i])
    words = ", ".join(
        f"{i}: {frame.pieces[i].strip() or '·'!r} {frame.confidence[i]:.2f}"
        for i in new[:shown] if i < len(frame.pieces))
    more = f" and {len(new) - shown} more" if len(new) > shown else ""
    mean = sum(frame.confidence[i] for i in new) / len(new) if new else 0.0
    edited = [i for i in range(len(frame.committed_at)) if frame.edited(i) == frame.index]
    rewrote = ", ".join(f"{i}: {frame.pieces[i].strip() or '·'!r}" for i in edited[:shown]
                        if i < len(frame.pieces))
    return (f"This pass committed {len(new)} token{'s' if len(new) != 1 else ''}"
            + (f" (mean confidence {mean:.2f}): {words}{more}" if new else "")
            + (f" + {len(padding)} padding" if padding else "")
            + (f" · edited {len(edited)} (purple): {rewrote}" if edited else "")
            + f" · {masked} still masked")
