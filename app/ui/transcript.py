"""The transcript (messages rendered as Markdown, code in monospace) and the composer."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeyEvent, QPalette, QTextDocument
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QScrollArea, QSizePolicy, QToolButton,
    QVBoxLayout, QWidget,
)

from app.export import settings_line, speaker, stats_line
from app.links import is_web_link
from app.store import Message


class MessageView(QFrame):
    copy_requested = Signal(int)
    replay_requested = Signal(int)

    def __init__(self, message: Message, parent: QWidget | None = None):
        super().__init__(parent)
        self.message = message
        self.setObjectName("userMessage" if message.role == "user" else "assistantMessage")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        palette = self.palette()
        role = (QPalette.ColorRole.AlternateBase if message.role == "user"
                else QPalette.ColorRole.Base)
        palette.setColor(QPalette.ColorRole.Window, palette.color(role))
        self.setPalette(palette)

        who = QLabel(f"<b>{speaker(message)}</b>")
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

        self.body = QLabel()
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.body.setOpenExternalLinks(False)
        self.body.linkActivated.connect(open_link)
        self.body.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.body.setText(markdown_html(message.text if message.text else "*(empty answer)*"))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 8)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.body)
        if message.role == "assistant":
            meta = " · ".join(x for x in (stats_line(message.stats),
                                          settings_line(message.settings)) if x)
            self.meta = QLabel(meta)
            self.meta.setObjectName("messageMeta")
            self.meta.setWordWrap(True)
            self.meta.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            font = self.meta.font()
            font.setPointSizeF(font.pointSizeF() * 0.85)
            self.meta.setFont(font)
            layout.addWidget(self.meta)


def open_link(url: str) -> bool:
    """Open a link from a message in the browser: http(s) only, anything else is ignored."""
    if not is_web_link(url):
        return False
    return QDesktopServices.openUrl(QUrl(url))


def markdown_html(text: str) -> str:
    """Markdown rendered by Qt, with any HTML tags in the text discarded (answers are data)."""
    document = QTextDocument()
    features = QTextDocument.MarkdownFeature
    document.setMarkdown(text, features.MarkdownDialectGitHub | features.MarkdownNoHTML)
    return document.toHtml()


class Transcript(QScrollArea):
    copy_requested = Signal(int)
    replay_requested = Signal(int)

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
        self.placeholder = QLabel("Type a message below. LLaDA answers by unmasking every "
                                  "position of its answer at once, step by step.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.column.insertWidget(0, self.placeholder)

    def set_messages(self, messages: list[Message]) -> None:
        for view in self.views:
            self.column.removeWidget(view)
            view.deleteLater()
        self.views = []
        for message in messages:
            view = MessageView(message)
            view.copy_requested.connect(self.copy_requested)
            view.replay_requested.connect(self.replay_requested)
            self.column.insertWidget(self.column.count() - 1, view)
            self.views.append(view)
        self.placeholder.setVisible(not messages)
        self.scroll_to_end()

    def scroll_to_end(self) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(
            self.verticalScrollBar().maximum()))


class Composer(QPlainTextEdit):
    """Enter sends; Shift+Enter inserts a newline."""

    submitted = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText("Message LLaDA (Enter sends, Shift+Enter for a new line)")
        self.setTabChangesFocus(True)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 16)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            else:
                self.submitted.emit()
            return
        super().keyPressEvent(event)
