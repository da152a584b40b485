"""The transcript (messages rendered as Markdown, code in monospace) and the composer.

The answer being generated denoises in place: a message of its own at the end of the transcript
holds a DenoiseCanvas (mask glyphs, block boundaries, the window's colour mode) until the stored
answer replaces it with rendered Markdown. Replay puts the canvas back into a stored answer's
message, with its timeline (app.ui.replay).
"""

from __future__ import annotations

from pathlib import Path

import html
import re
from collections.abc import Callable
from typing import Optional

from PySide6.QtCore import QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeyEvent, QPalette, QTextDocument
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QMenu, QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy,
    QToolButton, QVBoxLayout, QWidget,
)

from app.history.export import settings_line, speaker, stats_line
from app.history.links import is_web_link
from app.history.store import Message
from app.history.trace import Trace
from app.session.pictures import Picture
from app.session.settings_logic import PICTURE_KEY
from app.ui.canvas import CanvasFrame, DenoiseCanvas
from app.ui.examples import ExamplePrompts
from app.ui.replay import ReplayView, step_details


def style_message(frame: QFrame, role: str) -> None:
    frame.setObjectName("userMessage" if role == "user" else "assistantMessage")
    frame.setFrameShape(QFrame.Shape.StyledPanel)
    frame.setAutoFillBackground(True)
    palette = frame.palette()
    background = (QPalette.ColorRole.AlternateBase if role == "user"
                  else QPalette.ColorRole.Base)
    palette.setColor(QPalette.ColorRole.Window, palette.color(background))
    frame.setPalette(palette)


def small_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName("messageMeta")
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.85)
    label.setFont(font)
    return label


THUMBNAIL = 160  # px, the longer side of a question's picture in the transcript


def picture_thumbnail(picture: Picture | str) -> QLabel:
    """A question's picture, small: the one stored with it, or (questions stored before pictures
    were) the file it named, whose name shows when the file is gone."""
    from PySide6.QtGui import QPixmap

    label = QLabel()
    label.setObjectName("pictureThumbnail")
    pixmap = QPixmap()
    if isinstance(picture, str):
        pixmap.load(picture)
        name = Path(picture).name
    else:
        pixmap.loadFromData(picture.data)
        name = picture.name
    if pixmap.isNull():
        label.setText(f"Picture: {name} (no longer there)" if isinstance(picture, str)
                      else f"Picture: {name} (cannot be shown)")
    else:
        label.setPixmap(pixmap.scaled(THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio,
                                      Qt.TransformationMode.SmoothTransformation))
    label.setToolTip(name)
    return label


class MessageView(QFrame):
    copy_requested = Signal(int)
    copy_markdown_requested = Signal(int)
    retry_requested = Signal(int)
    replay_requested = Signal(int)
    export_requested = Signal(int)

    def __init__(self, message: Message, parent: QWidget | None = None,
                 picture: Picture | None = None):
        super().__init__(parent)
        self.message = message
        style_message(self, message.role)
        self.replay: Optional[ReplayView] = None

        who = QLabel(f"<b>{html.escape(speaker(message))}</b>")
        header = QHBoxLayout()
        header.addWidget(who)
        header.addStretch(1)
        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy this message's text")
        self.copy_button.clicked.connect(lambda: self.copy_requested.emit(message.id))
        header.addWidget(self.copy_button)
        self.replay_button = None
        if message.has_trace:
            self.replay_button = QToolButton()
            self.replay_button.setText("Replay")
            self.replay_button.setToolTip("Watch this answer unmask again, and scrub through it")
            self.replay_button.clicked.connect(lambda: self.replay_requested.emit(message.id))
            header.addWidget(self.replay_button)
        self.export_button = None
        if message.has_trace:
            self.export_button = QToolButton()
            self.export_button.setText("Export animation…")
            self.export_button.setToolTip("Save this answer's denoising as a GIF, an animated "
                                          "PNG or one PNG per step")
            self.export_button.clicked.connect(lambda: self.export_requested.emit(message.id))
            header.addWidget(self.export_button)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)

        self.body = QLabel()
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.body.setOpenExternalLinks(False)
        self.body.linkActivated.connect(open_link)
        self.body.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        if message.role == "user":
            # As typed: a fill-the-blanks text's [___] and underscores are not Markdown.
            self.body.setTextFormat(Qt.TextFormat.PlainText)
            self.body.setText(breakable_text(message.text))
        else:
            self.body.setText(markdown_html(message.text if message.text else "*(empty answer)*"))

        self.column = QVBoxLayout(self)
        self.column.setContentsMargins(10, 6, 10, 8)
        self.column.setSpacing(4)
        self.column.addLayout(header)
        if picture is None and message.role == "user" and message.settings.get(PICTURE_KEY):
            picture = str(message.settings[PICTURE_KEY])
        if picture:
            self.picture = picture_thumbnail(picture)
            self.column.addWidget(self.picture)
        self.column.addWidget(self.body)
        if message.role == "assistant" and message.stats.get("stopped"):
            after = message.stats.get("steps", message.stats.get("nfe"))
            self.stopped_note = small_label(
                f"Stopped after pass {after}: this is what was committed by then; the positions "
                "still masked were dropped.")
            self.stopped_note.setObjectName("stoppedNote")
            self.column.addWidget(self.stopped_note)
        if message.role == "assistant":
            meta = " · ".join(x for x in (stats_line(message.stats),
                                          settings_line(message.settings)) if x)
            self.meta = small_label(meta)
            self.column.addWidget(self.meta)

    def menu(self) -> QMenu:
        """The message's menu (right click): Copy, Copy as Markdown, Retry, and for an answer
        with a trace Replay and Export animation…"""
        menu = QMenu(self)
        menu.addAction("Copy", lambda: self.copy_requested.emit(self.message.id))
        menu.addAction("Copy as Markdown",
                       lambda: self.copy_markdown_requested.emit(self.message.id))
        menu.addAction("Retry", lambda: self.retry_requested.emit(self.message.id))
        menu.addSeparator()
        if self.message.has_trace:
            menu.addAction("Replay", lambda: self.replay_requested.emit(self.message.id))
            menu.addAction("Export animation…",
                           lambda: self.export_requested.emit(self.message.id))
        return menu

    def _context_menu(self, point: QPoint) -> None:
        menu = self.menu()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.mapToGlobal(point))

    # --- replay in place -------------------------------------------------------------------
    def start_replay(self, trace: Trace, mode: str) -> ReplayView:
        """The canvas and its timeline take the text's place (a replay already here restarts)."""
        self.end_replay()
        self.replay = ReplayView(trace, mode)
        self.replay.closed.connect(self.end_replay)
        self.column.insertWidget(self.column.indexOf(self.body), self.replay)
        self.body.hide()
        if self.replay_button is not None:
            self.replay_button.setEnabled(False)
        return self.replay

    def end_replay(self) -> None:
        """Back to the rendered text."""
        if self.replay is None:
            return
        replay, self.replay = self.replay, None
        replay.timer.stop()
        self.column.removeWidget(replay)
        replay.hide()
        replay.deleteLater()
        self.body.show()
        if self.replay_button is not None:
            self.replay_button.setEnabled(True)


class LiveAnswerView(QFrame):
    """The answer being generated, denoising in its own message until it is stored."""

    def __init__(self, mode: str, parent: QWidget | None = None):
        super().__init__(parent)
        style_message(self, "assistant")
        self.setObjectName("liveAnswer")
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>LLaDA</b>"))
        header.addStretch(1)
        self.canvas = DenoiseCanvas()
        self.canvas.set_mode(mode)
        self.details = small_label("Starting…")
        self.canvas.painted.connect(self._painted)
        column = QVBoxLayout(self)
        column.setContentsMargins(10, 6, 10, 8)
        column.setSpacing(4)
        column.addLayout(header)
        column.addWidget(self.canvas)
        column.addWidget(self.details)

    def set_frame(self, frame: CanvasFrame) -> None:
        self.canvas.set_frame(frame)
        if self.canvas.frames_shown == 0:  # never "Starting…" once a frame has arrived
            self.details.setText(step_details(frame) + " · denoising…")

    def _painted(self, _index: int) -> None:
        # Described when painted, so the line changes at the screen's rate like the canvas.
        if self.canvas.frame is not None:
            self.details.setText(step_details(self.canvas.frame) + " · denoising…")


class InterruptedNotice(QFrame):
    """Under a question whose answer was lost (the app was killed or crashed mid-answer): says
    so, with Retry."""

    retry_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        style_message(self, "assistant")
        self.setObjectName("interruptedAnswer")
        self.label = QLabel("<b>LLaDA</b> — the answer to this question was interrupted (the "
                            "app closed before it was finished) and was not kept.")
        self.label.setWordWrap(True)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setToolTip("Ask this question again, with the settings it was "
                                     "asked with")
        self.retry_button.clicked.connect(self.retry_requested)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 10, 8)
        row.addWidget(self.label, 1)
        row.addWidget(self.retry_button)


def open_link(url: str) -> bool:
    """Open a link from a message in the browser: http(s) only, anything else is ignored."""
    if not is_web_link(url):
        return False
    return QDesktopServices.openUrl(QUrl(url))


def markdown_html(text: str) -> str:
    """Markdown rendered by Qt, with any HTML tags in the text discarded (answers are data);
    long unbroken runs may wrap anywhere (see breakable)."""
    document = QTextDocument()
    features = QTextDocument.MarkdownFeature
    document.setMarkdown(text, features.MarkdownDialectGitHub | features.MarkdownNoHTML)
    return breakable(document.toHtml())


def markdown_plain(text: str) -> str:
    """The text as it reads on screen: Markdown rendered, then its plain text."""
    document = QTextDocument()
    features = QTextDocument.MarkdownFeature
    document.setMarkdown(text, features.MarkdownDialectGitHub | features.MarkdownNoHTML)
    return document.toPlainText()


LONG_RUN = 30          # a run of more characters than this, without a space, may wrap anywhere
WRAP_RUN = 8           # characters between its break opportunities (lines end near the edge)
_TAG_OR_TEXT = re.compile(r"(<[^>]*>)")
_LONG_RUN = re.compile(r"[^\s<>&\u200b]{%d,}" % (LONG_RUN + 1))
_LONG_PLAIN_RUN = re.compile(r"[^\s\u200b]{%d,}" % (LONG_RUN + 1))


def _with_breaks(match: re.Match) -> str:
    """A zero-width space every WRAP_RUN characters of the matched run."""
    run = match.group(0)
    return "\u200b".join(run[i:i + WRAP_RUN] for i in range(0, len(run), WRAP_RUN))


def breakable_text(text: str) -> str:
    """`breakable` for plain text (a user's message, shown as typed): every long run may wrap."""
    return _LONG_PLAIN_RUN.sub(_with_breaks, text)


def breakable(page: str) -> str:
    """QLabel wraps only between words, so a long URL or token would push the bubble past the
    window's edge: a zero-width space every WRAP_RUN characters of a run longer than LONG_RUN (in
    text, never in a tag or an entity) lets it wrap there. Copy takes the stored text, so none is copied."""
    return "".join(part if part.startswith("<") else _LONG_RUN.sub(_with_breaks, part)
                   for part in _TAG_OR_TEXT.split(page))


class Transcript(QScrollArea):
    copy_requested = Signal(int)
    copy_markdown_requested = Signal(int)
    retry_requested = Signal(int)
    replay_requested = Signal(int)
    export_requested = Signal(int)
    example_chosen = Signal(str)    # an example prompt of the empty chat was clicked
    interrupted_retry_requested = Signal()  # Retry under a question whose answer was interrupted

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.container = QWidget()
        self.column = QVBoxLayout(self.container)
        self.column.setContentsMargins(8, 8, 8, 8)
        self.column.setSpacing(8)
        self.column.addStretch(1)
        self.setWidget(self.container)
        self.views: list[MessageView] = []
        self.live: Optional[LiveAnswerView] = None
        self.mode = "state"
        # The empty chat: what to do, and the loaded model's example prompts (set_examples).
        self.placeholder = QWidget()
        self.placeholder.setObjectName("emptyChat")
        hint = QLabel("Type a message below. LLaDA answers by unmasking every position of its "
                      "answer at once, step by step.")
        hint.setWordWrap(True)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.examples = ExamplePrompts("Or try one of these:")
        self.examples.chosen.connect(self.example_chosen)
        empty = QVBoxLayout(self.placeholder)
        empty.addWidget(hint)
        empty.addSpacing(6)
        empty.addWidget(self.examples)
        self.column.insertWidget(0, self.placeholder)
        # The same prompts after the last answer, so a chat under way still offers them.
        self.more_examples = ExamplePrompts("Try another:")
        self.more_examples.setObjectName("moreExamplePrompts")
        self.more_examples.chosen.connect(self.example_chosen)
        self.column.insertWidget(self.column.count() - 1, self.more_examples)
        self.interrupted = InterruptedNotice()
        self.interrupted.retry_requested.connect(self.interrupted_retry_requested)
        self.interrupted.hide()

    def set_messages(self, messages: list[Message], interrupted: bool = False,
                     picture_of: Callable[[int], Picture | None] | None = None) -> None:
        """`interrupted`: the last message is a question whose answer was lost; a notice with
        Retry goes under it. `picture_of`: a question's stored picture, by message id."""
        for view in self.views:
            self.column.removeWidget(view)
            view.deleteLater()
        self.views = []
        for message in messages:
            picture = (picture_of(message.id) if picture_of is not None and message.has_picture
                       else None)
            view = MessageView(message, picture=picture)
            view.copy_requested.connect(self.copy_requested)
            view.copy_markdown_requested.connect(self.copy_markdown_requested)
            view.retry_requested.connect(self.retry_requested)
            view.replay_requested.connect(self.replay_requested)
            view.export_requested.connect(self.export_requested)
            self.column.insertWidget(self.column.count() - 1, view)
            self.views.append(view)
        self.column.removeWidget(self.interrupted)
        if interrupted and self.live is None:
            self.column.insertWidget(self.column.count() - 1, self.interrupted)
        self.interrupted.setVisible(interrupted and self.live is None)
        if self.live is not None:  # the answer being generated stays last
            self.column.removeWidget(self.live)
            self.column.insertWidget(self.column.count() - 1, self.live)
        self.placeholder.setVisible(not messages and self.live is None)
        self._place_more_examples()
        self.scroll_to_end()

    def set_examples(self, prompts: list[str]) -> None:
        """The example prompts the chat offers (the loaded model's; none for most): in the empty
        chat, and after the last answer of a chat under way."""
        self.examples.set_prompts(prompts)
        self.more_examples.set_prompts(prompts)
        self._place_more_examples()

    def _place_more_examples(self) -> None:
        """Last in the transcript, shown when there are answers and none is being generated."""
        self.column.removeWidget(self.more_examples)
        self.column.insertWidget(self.column.count() - 1, self.more_examples)
        self.more_examples.setVisible(bool(self.more_examples.buttons) and bool(self.views)
                                      and self.live is None)

    def view_of(self, message_id: int) -> Optional[MessageView]:
        return next((v for v in self.views if v.message.id == message_id), None)

    # --- the answer being generated --------------------------------------------------------
    def begin_live(self) -> LiveAnswerView:
        self.end_live()
        self.column.removeWidget(self.interrupted)  # a retry's answer takes the notice's place
        self.interrupted.hide()
        self.live = LiveAnswerView(self.mode)
        self.column.insertWidget(self.column.count() - 1, self.live)
        self.placeholder.hide()
        self._place_more_examples()
        self.scroll_to_end()
        return self.live

    def live_frame(self, frame: CanvasFrame) -> None:
        if self.live is None:
            return
        bar = self.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 24
        self.live.set_frame(frame)
        if following and self.live.isVisible():
            self.scroll_to_end()

    def set_live_visible(self, visible: bool) -> None:
        """The live answer shows in its own conversation only."""
        if self.live is not None:
            self.live.setVisible(visible)
            self.placeholder.setVisible(not self.views and not visible)

    def end_live(self) -> None:
        if self.live is None:
            return
        live, self.live = self.live, None
        live.canvas.flush()
        self.column.removeWidget(live)
        live.hide()
        live.deleteLater()
        self._place_more_examples()

    def set_mode(self, mode: str) -> None:
        """The colour mode of every canvas in the transcript (live answer, replays)."""
        self.mode = mode
        if self.live is not None:
            self.live.canvas.set_mode(mode)
        for view in self.views:
            if view.replay is not None:
                view.replay.set_mode(mode)

    def scroll_to_end(self) -> None:
        QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(
            self.verticalScrollBar().maximum()))


def png_bytes(image) -> bytes:
    """A QImage (or QPixmap) as PNG bytes; b"" when there is nothing to encode."""
    from PySide6.QtCore import QBuffer, QIODevice
    from PySide6.QtGui import QImage

    if not isinstance(image, QImage):
        image = image.toImage() if hasattr(image, "toImage") else QImage()
    if image.isNull():
        return b""
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(buffer.data())


class Composer(QPlainTextEdit):
    """Enter sends; Shift+Enter inserts a newline; a pasted image becomes the question's picture."""

    submitted = Signal()
    picture_pasted = Signal(bytes)  # PNG bytes of an image pasted from the clipboard

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText("Message LLaDA (Enter sends, Shift+Enter for a new line)")
        self.setTabChangesFocus(True)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 16)

    FILL_BLANKS_HINT = ("Text with holes to fill: [___] is one token per underscore, [_:8] is "
                        "8 tokens (Enter sends)")

    def set_fill_blanks(self, on: bool) -> None:
        """The placeholder says the fill-the-blanks syntax while that mode is on."""
        if on and self.placeholderText() != self.FILL_BLANKS_HINT:
            self._usual_placeholder = self.placeholderText()
            self.setPlaceholderText(self.FILL_BLANKS_HINT)
        elif not on and self.placeholderText() == self.FILL_BLANKS_HINT:
            self.setPlaceholderText(getattr(self, "_usual_placeholder", ""))

    def canInsertFromMimeData(self, source) -> bool:  # noqa: N802 - Qt override
        return source.hasImage() or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source) -> None:  # noqa: N802 - Qt override
        if source.hasImage() and not source.hasText():
            self.picture_pasted.emit(png_bytes(source.imageData()))
            return
        super().insertFromMimeData(source)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            else:
                self.submitted.emit()
            return
        super().keyPressEvent(event)
