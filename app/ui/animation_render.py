"""An answer's denoising drawn frame by frame by the canvas's own painter (DenoiseCanvas,
offscreen), with a caption strip, into images for app.history.animation to assemble.

In the window the drawing happens on the GUI thread (widgets live there) a few frames per
event-loop turn, and the encoding (quantizing, compressing) on a plain thread; the command line
draws and writes in one go.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Optional

from PIL import Image
from PySide6.QtCore import QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPalette

from app.history import animation
from app.session.stats_text import pass_caption, start_caption
from app.history.trace import Trace
from app.ui.canvas import MODES, CanvasFrame, DenoiseCanvas

WIDTH = 560
FRAMES_PER_TURN = 6


def light_palette(base: QPalette) -> QPalette:
    """Exports look the same whatever the desktop theme: dark text on white."""
    palette = QPalette(base)
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive,
                  QPalette.ColorGroup.Disabled):
        palette.setColor(group, QPalette.ColorRole.Base, QColor("#ffffff"))
        palette.setColor(group, QPalette.ColorRole.Window, QColor("#ffffff"))
        palette.setColor(group, QPalette.ColorRole.Text, QColor("#1a1a1a"))
        palette.setColor(group, QPalette.ColorRole.PlaceholderText, QColor("#6b6b6b"))
    return palette


def start_frame(trace: Trace) -> CanvasFrame:
    """The canvas before the first step: every position masked."""
    n = trace.gen_length
    fixed = set(trace.fixed)
    pieces = trace.pieces_at(0) if fixed else [""] * n
    return CanvasFrame(index=-1, block=0,
                       committed_at=[0 if i in fixed else -1 for i in range(n)],
                       confidence=[1.0 if i in fixed else 0.0 for i in range(n)],
                       pieces=[pieces[i] if i in fixed else "" for i in range(n)],
                       block_length=trace.block_length, total_steps=trace.num_steps,
                       fixed=frozenset(fixed))


def trace_frames(trace: Trace) -> list[CanvasFrame]:
    """The all-masked start, then the canvas after each step."""
    return [start_frame(trace)] + [
        CanvasFrame.of(trace.frame(k), trace.pieces_at(k), trace.block_length, trace.num_steps,
                       trace.fixed)
        for k in range(trace.num_steps)]


def caption(frame: CanvasFrame) -> str:
    if frame.index < 0:
        return start_caption(frame.total_steps, sum(1 for at in frame.committed_at if at < 0),
                             len(frame.committed_at))
    blocks = max(1, len(frame.committed_at) // max(1, frame.block_length))
    return pass_caption(frame.index, frame.nfe, frame.total_steps, frame.block, blocks)


class FrameRenderer:
    """Draws CanvasFrames with a hidden DenoiseCanvas at one fixed size for a whole answer."""

    def __init__(self, frames: list[CanvasFrame], mode: str = "state", width: int = WIDTH):
        if mode not in MODES:
            raise ValueError(f"colour mode {mode!r} is unknown; choose one of {', '.join(MODES)}")
        self.frames = frames
        self.canvas = DenoiseCanvas()
        self.canvas.setPalette(light_palette(self.canvas.palette()))
        self.canvas.set_mode(mode)
        self.canvas.resize(width, 60)
        self.caption_font = QFont(self.canvas.font())
        self.caption_font.setPointSizeF(self.caption_font.pointSizeF() * 0.8)
        self.caption_height = int(QFontMetricsF(self.caption_font).height() + 10)
        # Text takes more room than masks (or less): one height fits every frame.
        tallest, widest = 0.0, 0.0
        for frame in frames:
            self.canvas.show_now(frame)
            tallest = max([tallest] + [cell.rect.bottom() for cell in self.canvas.cells])
            widest = max([widest] + [cell.rect.right() for cell in self.canvas.cells])
        tallest += DenoiseCanvas.MARGIN + 1
        # A short answer gets a narrow picture (the layout is the same: every line still fits).
        metrics = QFontMetricsF(self.caption_font)
        caption_width = max((metrics.horizontalAdvance(caption(f)) for f in frames),
                            default=0.0) + 24
        width = int(min(width, max(widest + DenoiseCanvas.MARGIN + 2, caption_width, 160)))
        self.canvas_height = int(tallest)
        self.canvas.resize(width, self.canvas_height)
        self.size = (width, self.canvas_height + self.caption_height)

    def cells(self, k: int):
        """Frame k's cells (rects in image pixels): what the tests read colours at."""
        self.canvas.show_now(self.frames[k])
        return self.canvas.cells

    def render(self, k: int) -> QImage:
        frame = self.frames[k]
        self.canvas.show_now(frame)
        width, height = self.size
        image = QImage(width, height, QImage.Format.Format_RGBA8888)
        image.fill(QColor("#ffffff"))
        self.canvas.render(image)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        line = QColor("#e4e4e4")
        painter.setPen(line)
        painter.drawLine(0, self.canvas_height, width, self.canvas_height)
        painter.setFont(self.caption_font)
        painter.setPen(QColor("#555555"))
        painter.drawText(QRectF(8, self.canvas_height, width - 16, self.caption_height),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, caption(frame))
        painter.end()
        return image

    def pil(self, k: int) -> Image.Image:
        image = self.render(k)
        return animation.rgba_image(image.width(), image.height(), bytes(image.constBits()),
                                    image.bytesPerLine())

    def all_images(self) -> list[Image.Image]:
        return [self.pil(k) for k in range(len(self.frames))]


def ensure_application() -> None:
    """A QApplication for drawing offscreen: the offscreen platform where there is no display
    (a Linux terminal or CI), so the command line needs no window system."""
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is not None:
        return
    no_display = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if no_display and sys.platform not in ("darwin", "win32"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    QApplication(sys.argv[:1])


def export_trace(trace: Trace, path: str | Path, mode: str = "state",
                 width: int = WIDTH) -> list[Path]:
    """Draw and write an answer's animation in one go (the command line)."""
    ensure_application()
    if trace.num_steps == 0:
        raise ValueError("this answer has no denoising steps to animate")
    animation.kind_of(path)  # a bad file type is refused before anything is drawn
    renderer = FrameRenderer(trace_frames(trace), mode, width)
    return animation.write_animation(renderer.all_images(), path)


class AnimationExport(QObject):
    """The window's export: frames drawn a few per event-loop turn on the GUI thread, the files
    written on a plain thread; `finished` (the paths) or `failed` (one sentence) at the end."""

    finished = Signal(list)
    failed = Signal(str)
    progress = Signal(int, int)  # frames drawn, frames in all
    # From the writing thread, queued to this object's (the GUI) thread, where the public
    # signals are emitted: their receivers then run in order on the GUI thread, and one of them
    # may delete this object (deleteLater) without losing the others' calls.
    _written = Signal(object)

    def __init__(self, trace: Trace, path: str | Path, mode: str = "state",
                 parent: Optional[QObject] = None, width: int = WIDTH):
        super().__init__(parent)
        self.trace, self.path, self.mode, self.width = trace, Path(path), mode, width
        self.images: list[Image.Image] = []
        self.renderer: Optional[FrameRenderer] = None
        self.thread: Optional[threading.Thread] = None
        self.done = False
        self._written.connect(self._report, Qt.ConnectionType.QueuedConnection)

    def start(self) -> None:
        try:
            if self.trace.num_steps == 0:
                raise ValueError("this answer has no denoising steps to animate")
            animation.kind_of(self.path)
            self.renderer = FrameRenderer(trace_frames(self.trace), self.mode, self.width)
        except ValueError as error:
            message = str(error)
            QTimer.singleShot(0, lambda: self._fail(message[:1].upper() + message[1:] + "."))
            return
        QTimer.singleShot(0, self._draw_some)

    def _draw_some(self) -> None:
        renderer = self.renderer
        total = len(renderer.frames)
        for k in range(len(self.images), min(total, len(self.images) + FRAMES_PER_TURN)):
            self.images.append(renderer.pil(k))
        self.progress.emit(len(self.images), total)
        if len(self.images) < total:
            QTimer.singleShot(0, self._draw_some)
            return
        self.renderer = None
        self.thread = threading.Thread(target=self._write, name="animation-export", daemon=True)
        self.thread.start()

    def _write(self) -> None:
        try:
            written = animation.write_animation(self.images, self.path)
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            self._written.emit(f"The animation could not be written to {self.path}: {reason}")
            return
        self._written.emit([str(p) for p in written])

    def _report(self, outcome) -> None:
        if isinstance(outcome, str):
            self._fail(outcome)
        else:
            self.done = True
            self.finished.emit(outcome)

    def _fail(self, message: str) -> None:
        self.done = True
        self.failed.emit(message)
