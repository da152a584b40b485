"""The denoising canvas: one custom-painted widget showing the answer region as it unmasks.

Positions are laid out as text (word-wrapped runs of decoded token pieces); masked positions
show a mask glyph. Frames may arrive far faster than a screen can show them, so set_frame only
keeps the latest one and a timer at the screen's refresh rate paints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from PySide6.QtCore import QLineF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QGuiApplication, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.session.frame_text import MASK_GLYPH

MODES = {"state": "State", "confidence": "Confidence", "reveal": "Reveal order"}

# The reference demo's colours (llada-spec §5).
MASKED = QColor("#444444")
LOW = QColor("#FF6666")
MID = QColor("#FFAA33")
HIGH = QColor("#66CC66")
EARLIER = QColor("#6699CC")
NEW = QColor("#FFD24D")
EDITED = QColor("#B15CE6")  # a token the model replaced (LLaDA2.1's editing decoder)
REVEAL_LIGHT = QColor("#DCEBFA")
REVEAL_DARK = QColor("#08306B")


def confidence_colour(confidence: float) -> QColor:
    if confidence < 0.3:
        return LOW
    if confidence < 0.7:
        return MID
    return HIGH


def reveal_colour(step: int, last_step: int) -> QColor:
    """Light blue for early tokens to dark blue for late ones."""
    t = 0.0 if last_step <= 0 else min(1.0, max(0.0, step / last_step))
    return QColor.fromRgbF(
        REVEAL_LIGHT.redF() + (REVEAL_DARK.redF() - REVEAL_LIGHT.redF()) * t,
        REVEAL_LIGHT.greenF() + (REVEAL_DARK.greenF() - REVEAL_LIGHT.greenF()) * t,
        REVEAL_LIGHT.blueF() + (REVEAL_DARK.blueF() - REVEAL_LIGHT.blueF()) * t)


def text_on(background: QColor) -> QColor:
    luminance = 0.299 * background.redF() + 0.587 * background.greenF() + 0.114 * background.blueF()
    return QColor("#111111") if luminance > 0.55 else QColor("#ffffff")


@dataclass
class CanvasFrame:
    """What the canvas needs of a frame: plain lists, no arrays."""

    index: int
    block: int
    committed_at: list[int]
    confidence: list[float]
    pieces: list[str]
    block_length: int
    total_steps: int
    nfe: int = 0
    done: bool = False
    # Per position: its bytes are shown on an earlier position (the 2nd token of 中): no cell
    # width, and no word break before it.
    joined: list[bool] = field(default_factory=list)
    # Positions the user fixed (constraints, infill text): in place from the start, never new.
    fixed: frozenset = frozenset()
    # Per position, the step that last replaced its token (editing decoders; -1 never; empty:
    # a model that never edits).
    edited_at: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, frame, pieces: Sequence[str], block_length: int, total_steps: int,
           fixed: Sequence[int] = ()) -> "CanvasFrame":
        return cls(index=int(frame.index), block=int(frame.block),
                   committed_at=[int(c) for c in frame.committed_at],
                   confidence=[float(c) for c in frame.confidence], pieces=list(pieces),
                   block_length=int(block_length), total_steps=int(total_steps),
                   nfe=int(frame.nfe), done=bool(frame.done),
                   joined=list(getattr(pieces, "joined", [])), fixed=frozenset(fixed),
                   edited_at=[] if getattr(frame, "edited_at", None) is None
                   else [int(e) for e in frame.edited_at])

    def edited(self, i: int) -> int:
        """The step that last replaced position i's token (-1: never)."""
        return self.edited_at[i] if i < len(self.edited_at) else -1

    def is_joined(self, i: int) -> bool:
        return i < len(self.joined) and self.joined[i] and self.committed_at[i] >= 0

    def is_new(self, i: int) -> bool:
        """Committed by this frame's step (a fixed position never is)."""
        return self.committed_at[i] == self.index and i not in self.fixed

    def is_padding(self, i: int) -> bool:
        """A committed token with no text of its own (EOS, end of turn) after the answer."""
        return (self.committed_at[i] >= 0 and i < len(self.pieces) and not self.pieces[i]
                and not self.is_joined(i) and i not in self.fixed)

    def new_count(self) -> int:
        return sum(1 for i in range(len(self.committed_at)) if self.is_new(i))


@dataclass
class Cell:
    rect: QRectF
    text: str
    position: int


class DenoiseCanvas(QWidget):
    """Paints the latest frame at most once per screen refresh."""

    painted = Signal(int)  # the frame index just painted
    position_clicked = Signal(int)  # an answer position the user clicked

    PAD_X = 1.5
    PAD_Y = 2.0
    LINE_GAP = 3.0
    MARGIN = 8.0

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        font = QFont(self.font())
        font.setPointSizeF(max(10.0, font.pointSizeF() * 1.1))
        self.setFont(font)
        self.mode = "state"
        self.frame: Optional[CanvasFrame] = None
        self._pending: Optional[CanvasFrame] = None
        self.blank: Optional[CanvasFrame] = None  # masks shown while no frame is (to click on)
        self._cells: list[Cell] = []
        self._layout_width = -1.0
        self._content_height = 60.0
        self.frames_received = 0
        self.frames_shown = 0
        self.paint_count = 0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(self.refresh_interval_ms())
        self._timer.timeout.connect(self._tick)
        self.setMinimumHeight(60)

    @staticmethod
    def refresh_interval_ms() -> int:
        screen = QGuiApplication.primaryScreen()
        rate = screen.refreshRate() if screen is not None else 60.0
        if not rate or rate < 1:
            rate = 60.0
        return max(4, round(1000.0 / rate))

    # --- feeding ---------------------------------------------------------------------------
    def set_frame(self, frame: CanvasFrame) -> None:
        """Keep the frame; the refresh timer shows the latest one (frames in between coalesce)."""
        self._pending = frame
        self.frames_received += 1
        if not self._timer.isActive():
            self._timer.start()

    def show_now(self, frame: CanvasFrame) -> None:
        """Show a frame at once (scrubbing a replay)."""
        self._pending = None
        self._show(frame)

    def clear(self) -> None:
        self._pending = None
        self.frame = None
        self._cells = []
        if self.blank is not None:
            self._relayout()
        self.update()

    def set_blank(self, gen_length: int, block_length: int) -> None:
        """While no frame is shown, show gen_length masks (positions to click on)."""
        self.blank = CanvasFrame(index=-1, block=0, committed_at=[-1] * gen_length,
                                 confidence=[0.0] * gen_length, pieces=[""] * gen_length,
                                 block_length=block_length, total_steps=1)
        if self.frame is None:
            self._relayout()
            self.update()

    @property
    def shown(self) -> Optional[CanvasFrame]:
        return self.frame if self.frame is not None else self.blank

    @property
    def cells(self) -> list[Cell]:
        """The shown frame's cells as laid out at the widget's width."""
        return list(self._cells)

    def position_at(self, x: float, y: float) -> Optional[int]:
        for cell in self._cells:
            if cell.rect.contains(x, y):
                return cell.position
        return None

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        position = self.position_at(event.position().x(), event.position().y())
        if position is not None and event.button() == Qt.MouseButton.LeftButton:
            self.position_clicked.emit(position)
        super().mousePressEvent(event)

    def flush(self) -> None:
        """Show the pending frame now, if any (used when an answer ends)."""
        if self._pending is not None:
            self._show(self._pending)
            self._pending = None

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"colour mode {mode!r} is unknown; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.update()

    def _tick(self) -> None:
        if self._pending is None:
            self._timer.stop()
            return
        frame, self._pending = self._pending, None
        self._show(frame)

    def _show(self, frame: CanvasFrame) -> None:
        self.frame = frame
        self.frames_shown += 1
        self._relayout()
        self.update()

    # --- layout ----------------------------------------------------------------------------
    def _piece_text(self, frame: CanvasFrame, i: int) -> tuple[str, bool]:
        if frame.committed_at[i] < 0:
            return MASK_GLYPH, True
        piece = frame.pieces[i] if i < len(frame.pieces) else ""
        return piece, False

    def _relayout(self) -> None:
        width = float(max(120, self.width()))
        self._layout_width = width
        self._cells = self.layout_cells(width)
        bottom = max((c.rect.bottom() for c in self._cells), default=0.0)
        height = int(bottom + self.MARGIN + 1)
        self._content_height = height
        if self.minimumHeight() != max(60, height):
            self.setMinimumHeight(max(60, height))

    def layout_cells(self, width: float) -> list[Cell]:
        frame = self.shown
        if frame is None:
            return []
        fm = QFontMetricsF(self.font())
        line_h = fm.height() + 2 * self.PAD_Y
        space = fm.horizontalAdvance(" ")
        right = width - self.MARGIN
        x, y = self.MARGIN, self.MARGIN
        cells: list[Cell] = []

        # Group positions into runs that wrap as a whole (a word made of several pieces).
        runs: list[list[tuple[int, str, bool]]] = []
        previous_masked = True
        previous_text = " "
        for i in range(len(frame.committed_at)):
            text, masked = self._piece_text(frame, i)
            if frame.is_joined(i) and runs:
                runs[-1].append((i, text, masked))
                continue
            starts_word = (masked or previous_masked or not text or text[:1].isspace()
                           or previous_text[-1:].isspace() or not previous_text)
            if starts_word or not runs:
                runs.append([])
            runs[-1].append((i, text, masked))
            previous_masked, previous_text = masked, text

        def width_of(text: str, masked: bool) -> float:
            if masked:
                return fm.horizontalAdvance(MASK_GLYPH) + 2 * self.PAD_X
            shown = text.replace("\n", "").replace("\r", "")
            return max(space * 0.6, fm.horizontalAdvance(shown)) + 2 * self.PAD_X

        for run in runs:
            total = sum(0.0 if frame.is_joined(i) else width_of(t, m) for i, t, m in run)
            if x > self.MARGIN and x + total > right:
                x, y = self.MARGIN, y + line_h + self.LINE_GAP
            for i, text, masked in run:
                shown = text if masked else text.replace("\r", "")
                breaks = shown.count("\n")
                shown = shown.replace("\n", "")
                if x == self.MARGIN and not masked:
                    shown = shown.lstrip(" ")
                w = 0.0 if frame.is_joined(i) else width_of(shown, masked)
                if x > self.MARGIN and x + w > right:
                    x, y = self.MARGIN, y + line_h + self.LINE_GAP
                cells.append(Cell(QRectF(x, y, w, line_h), shown, i))
                x += w + (1.0 if masked else 0.0)
                for _ in range(min(breaks, 2)):
                    x, y = self.MARGIN, y + line_h + self.LINE_GAP
        return cells

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.shown is not None and abs(self.width() - self._layout_width) > 0.5:
            self._relayout()

    def sizeHint(self) -> QSize:
        return QSize(480, int(max(60, self._content_height)))

    # --- painting --------------------------------------------------------------------------
    def colours(self, i: int) -> tuple[Optional[QColor], QColor]:
        """(background, text colour) of position i in the current mode."""
        frame = self.shown
        palette = self.palette()
        plain = palette.color(QPalette.ColorRole.Text)
        at = frame.committed_at[i]
        if at < 0:
            return MASKED, QColor("#bbbbbb")
        if i in frame.fixed:  # the user's own text: plain in every mode and every frame
            return None, plain
        if frame.is_padding(i):
            faint = QColor(plain)
            faint.setAlpha(90)
            return None, faint
        if frame.edited(i) == frame.index and self.mode != "reveal":
            return EDITED, text_on(EDITED)  # replaced at this step: shown as an edit
        if self.mode == "state":
            if at == frame.index:
                return NEW, text_on(NEW)
            return None, plain
        if self.mode == "confidence":
            if at == frame.index:
                background = confidence_colour(frame.confidence[i])
            else:
                background = EARLIER
            return background, text_on(background)
        background = reveal_colour(at, max(1, frame.total_steps - 1))
        return background, text_on(background)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        frame = self.shown
        self.paint_count += 1
        if frame is None:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                             "The answer appears here as it unmasks.")
            painter.end()
            return
        painter.setFont(self.font())
        boundary = QColor(palette.color(QPalette.ColorRole.Text))
        boundary.setAlpha(70)
        exposed = QRectF(event.rect()).adjusted(-2, -2, 2, 2)
        for cell in self._cells:
            if not exposed.intersects(cell.rect):
                continue
            background, colour = self.colours(cell.position)
            if background is not None:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(background)
                painter.drawRoundedRect(cell.rect.adjusted(0.5, 0.5, -0.5, -0.5), 3, 3)
            if cell.text.strip() or cell.text == MASK_GLYPH:
                painter.setPen(colour)
                painter.drawText(cell.rect, Qt.AlignmentFlag.AlignCenter, cell.text)
            elif frame.committed_at[cell.position] >= 0 and not cell.text:
                # EOS padding after the answer: a dim dotted outline and a dot, neither a mask
                # nor a word, and never highlighted as new.
                faint = QColor(colour)
                faint.setAlpha(150)
                painter.setPen(QPen(faint, 1.0, Qt.PenStyle.DotLine))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(cell.rect.adjusted(1.5, 2.5, -1.5, -2.5), 3, 3)
                painter.setPen(faint)
                painter.drawText(cell.rect, Qt.AlignmentFlag.AlignCenter, "·")
            if frame.edited(cell.position) >= 0:  # edited at some step: underlined
                painter.setPen(QPen(EDITED, 2.0))
                y = cell.rect.bottom() - 1.0
                painter.drawLine(QLineF(cell.rect.left() + 2, y, cell.rect.right() - 2, y))
            if cell.position and frame.block_length and cell.position % frame.block_length == 0:
                pen = QPen(boundary, 1.0, Qt.PenStyle.DashLine)
                painter.setPen(pen)
                x = cell.rect.left() - 0.5
                painter.drawLine(QLineF(x, cell.rect.top() - 1, x, cell.rect.bottom() + 1))
        painter.end()
        if self.frame is not None:
            self.painted.emit(frame.index)
