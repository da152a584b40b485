"""The main window: wiring. Conversations on the left, the transcript (the answer being
generated denoises in place there) and composer in the centre, settings on the right, the
inspector (the detailed canvas) from View ▸ Inspector. The work lives elsewhere: model loading and
switching (model_control), generation requests (generation), the context line (context),
menus (menus), export/import (transfer), and the conversation rules, free of Qt
(app.session.conversation)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import (
    QCheckBox, QDockWidget, QFileDialog, QFrame, QHBoxLayout, QInputDialog, QLabel, QMainWindow,
    QMessageBox, QPushButton, QScrollArea, QSplitter, QStackedWidget, QVBoxLayout, QWidget,
)

from app.history import export as export_mod
from app.history import trace as trace_mod
from app.session.conversation import ModelIdentity, interrupted_question
from app.models.defaults import given_settings, window_defaults
from app.session.settings_logic import FILL_BLANKS_KEY
from app.history.store import Store, StoreError
from app.session.pictures import NO_VISION, Picture, checked_picture, read_picture
from app.ui import transfer
from app.ui.about import AboutDialog
from app.ui.about import open_log as open_log_file
from app.ui.banner import Banner
from app.ui.canvas import CanvasFrame
from app.ui.canvas_panel import CanvasPanel
from app.ui.context import ContextLine
from app.ui.conversation_list import ConversationList
from app.ui.generation import Generation
from app.ui.menus import build_menus, shortcut
from app.ui.model_control import NO_MODEL, ModelControl
from app.ui.model_picker import build_toolbar
from app.ui.models_ui import DownloadDialog, ModelManager, WelcomePage
from app.session.progress_text import progress_line
from app.ui.animation_render import AnimationExport
from app.ui.replay import ReplayView, position_history
from app.ui.settings_panel import SettingsPanel
from app.ui.transcript import Composer, Transcript, markdown_plain
from app.ui.worker import WorkerThread

__all__ = ["Banner", "MainWindow", "app_icon", "shortcut"]


def app_icon() -> QIcon:
    return QIcon(str(Path(__file__).resolve().parents[1] / "resources" / "icon.svg"))


log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    model_loaded = Signal(dict)
    model_failed = Signal(str)
    answer_stored = Signal(int)         # message id
    generation_failed = Signal(str)
    frame_received = Signal(int, object)  # request id, StepFrame (in the GUI thread)

    def __init__(self, store: Store, *, model: Optional[str] = None,
                 backend: Optional[str] = None, load_options: Optional[dict] = None,
                 default_settings: Optional[dict] = None,
                 hub_cache_dir: Optional[str] = None, hub_endpoint: Optional[str] = None):
        """`default_settings`: sampler settings the caller asks for; those that differ from
        the reference's and the model's own follow every model, the rest come from the loaded
        model's defaults (app.models.defaults.window_defaults)."""
        super().__init__()
        self.hub_cache_dir = hub_cache_dir      # None: huggingface_hub's standard cache
        self.hub_endpoint = hub_endpoint        # None: $HF_ENDPOINT or the Hub
        self.setWindowTitle("LLaDA Desktop")
        self.setWindowIcon(app_icon())
        self.store = store
        self.backend_name = backend
        self.load_options = load_options or {}
        given = given_settings(default_settings, model)
        self.current_id: Optional[int] = None
        self.colour_mode = "state"
        self.exports: list[AnimationExport] = []
        self.about_dialog: Optional[AboutDialog] = None
        self._stopping = False

        self.workers = WorkerThread(self)
        self._build()
        self.default_settings = window_defaults(model, given)
        self.models = ModelControl(self, given)
        self.models.loaded.connect(self.model_loaded)
        self.models.failed.connect(self.model_failed)
        self.generation = Generation(self)
        self.generation.answer_stored.connect(self.answer_stored)
        self.generation.failed.connect(self.generation_failed)
        self.generation.frame_received.connect(self.frame_received)
        self.context = ContextLine(self)
        self.composer_column.insertWidget(0, self.context)
        self.composer.textChanged.connect(self.context.refresh)
        self.composer.textChanged.connect(self.update_send_button)
        build_menus(self)
        self.model_picker = build_toolbar(self)
        # (the worker's own `loading` reaches the picker through ModelControl, in this thread)
        for signal in (self.model_loaded, self.model_failed):
            signal.connect(lambda *_: self.model_picker.show_state())
        # An error whose cause is gone goes with it: a failed answer once one is stored.
        self.answer_stored.connect(lambda _id: self.banner.clear_error())
        self.frame_received.connect(self._show_progress)

        self.refresh_conversations()
        if store.notice:
            self.notice.show_message(store.notice, "info")
        store.on_notice = lambda text: self.notice.show_message(text, "info")
        ids = self.conversations.ids()
        if ids:
            self.open_conversation(ids[0])
        else:
            self.new_conversation()
        self._follow_color_scheme()
        if model:
            self.load_model(model)
        else:
            self.status.setText(NO_MODEL)
        self.update_welcome()
        self.update_send_button()

    @property
    def default_settings(self) -> dict:
        """The settings a new chat gets: the loaded model's own (with what the caller asked
        for); the settings panel's "Model defaults" returns to them."""
        return self._default_settings

    @default_settings.setter
    def default_settings(self, settings: dict) -> None:
        self._default_settings = dict(settings)
        self.settings_panel.set_defaults(self._default_settings)

    # --- building --------------------------------------------------------------------------
    def _build(self) -> None:
        self.conversations = ConversationList()
        self.notice = Banner(name="notice")     # the history's notices: never covered by others
        self.banner = Banner()                  # errors, the demo's note
        self.transcript = Transcript()
        self.live = CanvasPanel("Denoising")   # the inspector
        self.live.setMinimumHeight(110)
        self.composer = Composer()
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")
        self.send_button.setMinimumWidth(84)
        self.send_button.setDefault(True)

        self.fill_blanks = QCheckBox("Fill the blanks")
        self.fill_blanks.setObjectName("fillBlanks")
        self.fill_blanks.setToolTip(
            "Send a text with holes: [____] is one token per underscore, [_:8] is 8 tokens. "
            "The model fills the holes using the text on both sides; the canvas shows them in "
            "place.")
        # A picture for the next question (LLaDA-V): the button, or a file dropped on the window.
        self.picture: Optional[Picture] = None
        # the stored answer whose frames the Inspector's canvas shows (None: the last answer's)
        self.canvas_trace: Optional[trace_mod.Trace] = None
        self.picture_button = QPushButton("Picture…")
        self.picture_button.setObjectName("pictureButton")
        self.picture_button.setToolTip("Ask about a picture (a model with vision: LLaDA-V); "
                                       "or drop an image file on the window")
        self.picture_button.clicked.connect(self._choose_picture)
        self.setAcceptDrops(True)
        send_column = QVBoxLayout()
        send_column.addStretch(1)
        send_column.addWidget(self.picture_button)
        send_column.addWidget(self.fill_blanks)
        self.fill_blanks.toggled.connect(self.composer.set_fill_blanks)
        self.fill_blanks.toggled.connect(self._fill_blanks_toggled)
        send_column.addWidget(self.send_button)
        composer_row = QHBoxLayout()
        composer_row.addWidget(self.composer, 1)
        composer_row.addLayout(send_column)
        composer_row.setContentsMargins(0, 0, 0, 0)
        composer_box = QWidget()
        self.composer_column = QVBoxLayout(composer_box)
        self.composer_column.setContentsMargins(0, 0, 0, 0)
        self.composer_column.setSpacing(2)
        self.composer_column.addLayout(composer_row)

        self.centre_split = QSplitter(Qt.Orientation.Vertical)
        self.centre_split.addWidget(self.transcript)
        self.centre_split.setChildrenCollapsible(False)

        self.welcome = WelcomePage()
        self.welcome.download_requested.connect(self.download_model)
        self.welcome.open_requested.connect(self.choose_model)
        self.welcome.demo_requested.connect(self.request_model)
        self.welcome.use_requested.connect(self.request_model)
        self.welcome.example_requested.connect(self.try_example)
        self.transcript.example_chosen.connect(self.send)
        self.centre_stack = QStackedWidget()
        self.centre_stack.addWidget(self.centre_split)
        # The welcome page scrolls in a narrow window rather than widening it.
        self.welcome_scroll = QScrollArea()
        self.welcome_scroll.setObjectName("welcomeScroll")
        self.welcome_scroll.setWidgetResizable(True)
        self.welcome_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.welcome_scroll.setWidget(self.welcome)
        self.centre_stack.addWidget(self.welcome_scroll)
        self.composer_box = composer_box

        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(self.notice)
        column.addWidget(self.banner)
        column.addWidget(self.centre_stack, 1)
        column.addWidget(composer_box)

        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.conversations)
        self.split.addWidget(centre)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([220, 760])
        self.setCentralWidget(self.split)

        self.settings_panel = SettingsPanel()
        self.settings_dock = QDockWidget("Settings", self)
        self.settings_dock.setObjectName("settingsDock")
        self.settings_dock.setWidget(self.settings_panel)
        self.settings_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                                       | QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.settings_dock)

        self.inspector_dock = QDockWidget("Inspector", self)
        self.inspector_dock.setObjectName("inspectorDock")
        self.inspector_dock.setWidget(self.live)
        self.inspector_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                                        | QDockWidget.DockWidgetFeature.DockWidgetMovable
                                        | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.inspector_dock)
        self.inspector_dock.hide()

        self.status = QLabel()
        self.statusBar().addWidget(self.status, 1)

        self.conversations.selected.connect(self.open_conversation)
        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.rename_requested.connect(lambda cid: self.rename_conversation(cid))
        self.conversations.delete_requested.connect(lambda cid: self.delete_conversation(cid))
        self.conversations.search_changed.connect(lambda _: self.refresh_conversations())
        self.transcript.copy_requested.connect(self.copy_message)
        self.transcript.copy_markdown_requested.connect(self.copy_message_markdown)
        self.transcript.retry_requested.connect(self.retry_message)
        self.transcript.replay_requested.connect(self.replay_message)
        self.transcript.export_requested.connect(self.choose_export_animation)
        self.transcript.interrupted_retry_requested.connect(self.retry_interrupted)
        self.live.mode_changed.connect(self._colour_mode_changed)
        self.composer.submitted.connect(self.send)
        self.composer.picture_pasted.connect(self.paste_picture)
        self.send_button.clicked.connect(self._send_or_stop)
        self.settings_panel.changed.connect(self._settings_changed)
        self.live.canvas.position_clicked.connect(self._canvas_clicked)
        self._show_blank_canvas()
        self.resize(1180, 760)

    def _follow_color_scheme(self) -> None:
        hints = QGuiApplication.styleHints()
        signal = getattr(hints, "colorSchemeChanged", None)
        if signal is not None:
            signal.connect(lambda _scheme: self._restyle())

    def _restyle(self) -> None:
        # Widgets draw with palette roles, so a new OS palette only needs a rebuild of views.
        if self.current_id is not None:
            self.show_messages()
        self.live.canvas.update()

    # --- conversations ---------------------------------------------------------------------
    def refresh_conversations(self) -> None:
        self.conversations.populate(self.store.conversations(self.conversations.search.text()),
                                    self.current_id)
        self.update_title()

    def update_title(self) -> None:
        """"<chat title> — LLaDA Desktop", following renames (also the first message's)."""
        conversation = (self.store.conversation(self.current_id)
                        if self.current_id is not None else None)
        self.setWindowTitle(f"{conversation.title} — LLaDA Desktop" if conversation
                            else "LLaDA Desktop")

    def new_conversation(self) -> int:
        """Start a conversation (an empty current one is reused rather than piling up)."""
        if (self.current_id is not None and self.store.conversation(self.current_id) is not None
                and not self.store.messages(self.current_id) and not self.generating):
            self.store.set_conversation_settings(self.current_id, self.default_settings)
            self.settings_panel.set_settings(self.default_settings)
            self.fill_blanks.setChecked(False)
            self.composer.setFocus()
            return self.current_id
        conversation_id = self.store.create_conversation("New chat", self.default_settings)
        self.current_id = conversation_id
        self.refresh_conversations()
        self.open_conversation(conversation_id)
        self.composer.setFocus()
        return conversation_id

    def open_conversation(self, conversation_id: int) -> None:
        conversation = self.store.conversation(conversation_id)
        if conversation is None:
            return
        self.current_id = conversation_id
        self.settings_panel.set_settings(conversation.settings or self.default_settings)
        # The toggle is per chat: a fill-the-blanks chat opens with it on, the others off.
        self.fill_blanks.setChecked(bool((conversation.settings or {}).get(FILL_BLANKS_KEY)))
        self._show_blank_canvas()
        self.show_messages()
        if not self.generating:
            self.show_last_answer_on_canvas()
        self.context.refresh()
        if self.conversations.current_id() != conversation_id:
            self.refresh_conversations()
        self.update_title()

    def show_messages(self) -> None:
        messages = self.store.messages(self.current_id) if self.current_id is not None else []
        request = self.request if getattr(self, "generation", None) is not None else None
        answering = request is not None and request["conversation_id"] == self.current_id
        self.transcript.set_messages(
            messages, interrupted=interrupted_question(messages, answering) is not None,
            picture_of=self.store.picture)
        self.transcript.set_live_visible(answering)
        self.update_welcome()

    # --- colour mode and inspector ---------------------------------------------------------
    def set_colour_mode(self, mode: str) -> None:
        """One colour mode for every canvas: the inspector's, the live answer's, replays'."""
        self.live.set_mode(mode)

    def _colour_mode_changed(self, mode: str) -> None:
        self.colour_mode = mode
        self.transcript.set_mode(mode)
        action = getattr(self, "colour_actions", {}).get(mode)
        if action is not None:
            action.setChecked(True)

    def show_inspector(self, visible: bool = True) -> None:
        self.inspector_dock.setVisible(visible)
        if visible:
            self.inspector_dock.raise_()

    # --- welcome page ----------------------------------------------------------------------
    @property
    def welcome_shown(self) -> bool:
        return self.centre_stack.currentWidget() is self.welcome_scroll

    def update_welcome(self) -> None:
        """With no model (and none loading) and an empty chat, the welcome page takes the centre."""
        if not hasattr(self, "centre_stack"):
            return
        empty = self.current_id is None or not (self.transcript.views or self.transcript.live)
        show = self.model_info is None and not self.loading and empty
        if show and not self.welcome_shown:
            self.welcome.refresh(self.model_on_disk())
        self.centre_stack.setCurrentWidget(self.welcome_scroll if show else self.centre_split)
        self.composer_box.setVisible(not show)

    def model_on_disk(self) -> Optional[tuple[str, str]]:
        """(name, folder) of a model that is already here: a downloaded one or an added folder."""
        from app.models import local
        from app.models.catalog import CATALOG
        from app.models.download import downloaded_snapshot

        for entry in CATALOG:
            folder = downloaded_snapshot(entry.repo_id, self.hub_cache_dir)
            if folder is not None:
                return entry.name, str(folder)
        for folder in local.added_folders(self.store):
            if Path(folder, "config.json").is_file():
                return Path(folder).name, folder
        return None

    def show_last_answer_on_canvas(self) -> None:
        """The canvas shows the conversation's last answer as it ended (or nothing)."""
        trace = self.canvas_trace = self.last_answer_trace()
        if trace is None or trace.num_steps == 0:
            self.live.clear()
            return
        last = trace.num_steps - 1
        self.live.show_now(CanvasFrame.of(trace.frame(last), trace.pieces, trace.block_length,
                                          trace.num_steps, trace.fixed))

    def rename_conversation(self, conversation_id: int, title: Optional[str] = None) -> None:
        if title is None:
            conversation = self.store.conversation(conversation_id)
            title, ok = QInputDialog.getText(self, "Rename conversation", "Title",
                                             text=conversation.title if conversation else "")
            if not ok:
                return
        title = title.strip()
        if title:
            self.store.rename_conversation(conversation_id, title)
            self.refresh_conversations()

    def delete_conversation(self, conversation_id: int, confirm: bool = True) -> None:
        if self.request and self.request["conversation_id"] == conversation_id:
            self.stop()
        if confirm:
            conversation = self.store.conversation(conversation_id)
            answer = QMessageBox.question(
                self, "Delete conversation",
                f"Delete “{conversation.title if conversation else ''}” and all its messages?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.store.delete_conversation(conversation_id)
        if conversation_id == self.current_id:
            self.current_id = None
            ids = [c.id for c in self.store.conversations()]
            if ids:
                self.open_conversation(ids[0])
            else:
                self.new_conversation()
                return
        self.refresh_conversations()

    def _fill_blanks_toggled(self, on: bool) -> None:
        conversation = self.store.conversation(self.current_id) if self.current_id else None
        if conversation is not None and bool(conversation.settings.get(FILL_BLANKS_KEY)) != on:
            settings = {k: v for k, v in (conversation.settings
                                          or self.settings_panel.settings()).items()
                        if k != FILL_BLANKS_KEY}
            self.store.set_conversation_settings(
                self.current_id, {**settings, FILL_BLANKS_KEY: True} if on else settings)

    def _settings_changed(self, settings: dict) -> None:
        if self.current_id is not None:
            toggle = {FILL_BLANKS_KEY: True} if self.fill_blanks.isChecked() else {}
            self.store.set_conversation_settings(self.current_id, {**settings, **toggle})
        if self.banner.text().startswith("These settings cannot be used"):
            self.banner.clear_error()       # the settings it was about changed
        self._show_blank_canvas()
        self.context.refresh()

    def _show_blank_canvas(self) -> None:
        """The masks of the next answer, shown while the canvas has no answer on it."""
        settings = self.settings_panel.settings()
        self.live.canvas.set_blank(settings["gen_length"], settings["block_length"])

    def _canvas_clicked(self, position: int) -> None:
        """A click on a masked position of the empty canvas pins a word there; on a stored
        answer's canvas it tells what that position showed, pass by pass (LLaDA2.1's edits)."""
        if self.generating:
            return
        if self.live.canvas.frame is None:
            self.settings_panel.add_constraint_position(position)
            return
        trace = self.canvas_trace or self.last_answer_trace()
        if trace is not None and position < trace.gen_length:
            self.live.details.setText(position_history(trace, position))

    def last_answer_trace(self) -> Optional[trace_mod.Trace]:
        """The stored trace of the conversation's last answer (what the canvas shows once an
        answer has ended), or None."""
        answers = [m for m in self.transcript.views if m.message.has_trace]
        blob = self.store.trace_blob(answers[-1].message.id) if answers else None
        try:
            return trace_mod.decode(blob) if blob else None
        except ValueError:
            return None

    # --- model (app.ui.model_control) ------------------------------------------------------
    @property
    def model_info(self) -> Optional[dict]:
        return self.models.info

    @property
    def identity(self) -> Optional[ModelIdentity]:
        return self.models.identity

    @property
    def fingerprint(self) -> str:
        return self.models.identity.fingerprint if self.models.identity else ""

    @property
    def loading(self) -> bool:
        return getattr(self, "models", None) is not None and self.models.loading

    @property
    def model_path(self) -> Optional[str]:
        return self.models.path

    @property
    def download_dialog(self) -> Optional[DownloadDialog]:
        return self.models.download_dialog

    @property
    def model_manager(self) -> Optional[ModelManager]:
        return self.models.manager

    def load_model(self, path: str) -> None:
        self.models.load(path)

    def memory_limit(self):
        from app.models.fit import memory_limit

        return memory_limit(self.backend_name, self.load_options.get("device"))

    def request_model(self, path: str) -> bool:
        return self.models.request(path)

    def try_example(self, path: str, prompt: str) -> bool:
        return self.models.try_example(path, prompt)

    def open_folder(self, folder: str) -> bool:
        return self.models.open_folder(folder)

    def choose_model(self) -> None:
        self.models.choose()

    def download_model(self, repo_id: str) -> Optional[DownloadDialog]:
        return self.models.download(repo_id)

    def show_model_manager(self) -> ModelManager:
        return self.models.show_manager()

    # --- sending (app.ui.generation) -------------------------------------------------------
    @property
    def generating(self) -> bool:
        return getattr(self, "generation", None) is not None and self.generation.busy

    @property
    def request(self) -> Optional[dict]:
        return self.generation.request

    def set_busy(self, busy: bool) -> None:
        self._stopping = False
        self.send_button.setText("Stop" if busy else "Send")
        self.send_button.setToolTip("Stop this answer (Esc)" if busy else "Send (Enter)")
        self.update_send_button()

    def set_stopping(self) -> None:
        """Stop was asked: said at once, though the model finishes the step it is in (with a big
        model in exact mode, seconds)."""
        self._stopping = True
        self.send_button.setText("Stopping…")
        self.send_button.setToolTip("The answer stops after the step being computed")
        self.send_button.setEnabled(False)

    def update_send_button(self) -> None:
        """Send needs something to send and no model loading; Stop is always there while an
        answer is generated (until it was pressed)."""
        if self.generating:
            self.send_button.setEnabled(not self._stopping)
        else:
            self.send_button.setEnabled(not self.loading
                                        and bool(self.composer.toPlainText().strip()))

    def _show_progress(self, request_id: int, frame) -> None:
        """The status line during an answer: pass k/n, the share done and the time left."""
        request = self.request
        if request is None or request["id"] != request_id or self._stopping:
            return
        done = int(frame.index) + 1
        total = int(request["settings"]["steps"])
        verb = "Regenerating" if request.get("replaces") else "Generating"
        self.status.setText(f"{verb}… "
                            + progress_line(done, total, time.time() - request["started"]))

    def _send_or_stop(self) -> None:
        if self.generating:
            self.stop()
        else:
            self.send()

    def send(self, text: Optional[str] = None) -> bool:
        """Send the composer's text (or `text`); returns whether a generation started."""
        if self.generating:
            return False
        text = (self.composer.toPlainText() if text is None else text).strip()
        if not text:
            return False
        if self.model_info is None:
            self.banner.show_message("No model is loaded yet. Open a model folder with "
                                     "File ▸ Open model folder… (Ctrl+O).", "error")
            return False
        settings = self.settings_panel.settings()
        infill = self.fill_blanks.isChecked()
        if infill:
            if not self.generation.check_infill(text, settings):
                return False
        elif not self.generation.check_settings(settings):
            return False
        self.banner.clear_error()       # a new question: an earlier failure is history
        try:
            if self.current_id is None or self.store.conversation(self.current_id) is None:
                self.new_conversation()
            conversation_id = self.current_id
            if self.store.conversation(conversation_id).title == "New chat":
                title = " ".join(text.split())
                self.store.rename_conversation(conversation_id,
                                               title[:48] + ("…" if len(title) > 48 else ""))
            self.composer.clear()
            self.generation.send(conversation_id, text, settings, infill=infill,
                                 picture=None if infill else self.picture)
            self.attach_picture(None)
        except StoreError as error:     # locked or unusable history: the text stays in the box
            log.warning("the question could not be stored", exc_info=True)
            if not self.composer.toPlainText().strip():
                self.composer.setPlainText(text)
            self.banner.show_message(f"{error} Your message was not sent.", "error")
            return False
        self.refresh_conversations()
        self.show_messages()
        return True

    def attach_picture(self, source: "str | Picture | None") -> bool:
        """The picture the next question is about: a file, a pasted Picture, or None for none.
        A file that is not a picture, and any picture while the model has no vision, is one
        sentence in the banner; the composer's text stays."""
        if source is None:
            self.picture = None
        else:
            try:
                if self.model_info is not None and not self.model_info.get("vision"):
                    raise ValueError(NO_VISION)
                picture = source if isinstance(source, Picture) else read_picture(source)
            except ValueError as error:
                self.banner.show_message(f"This picture cannot be attached: {error}.", "error")
                return False
            self.picture = picture
        name = self.picture.name if self.picture else ""
        self.picture_button.setText(f"📎 {name[:18]}" if self.picture else "Picture…")
        self.context.refresh()  # the picture's positions count against the context
        self.picture_button.setToolTip(f"{name} — click to choose another" if self.picture else
                                       "Ask about a picture (a model with vision: LLaDA-V); "
                                       "or drop an image file on the window, or paste one")
        return True

    def paste_picture(self, data: bytes) -> None:
        """An image pasted into the composer (PNG bytes from the clipboard)."""
        try:
            picture = checked_picture(data, "the pasted picture")
        except ValueError as error:
            self.banner.show_message(f"This picture cannot be attached: {error}.", "error")
            return
        self.attach_picture(picture)

    def _choose_picture(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(
            self, "Ask about a picture", "", "Pictures (*.png *.jpg *.jpeg *.webp *.gif *.bmp *.tif *.tiff)")
        if path:
            self.attach_picture(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            self.attach_picture(files[0])
            event.acceptProposedAction()

    def stop(self) -> None:
        self.generation.stop()

    def regenerate(self) -> bool:
        """Answer the last user message again; the last answer stays until the new one is
        stored."""
        if self.generating or self.current_id is None or self.model_info is None:
            return False
        settings = self.settings_panel.settings()
        if not self.generation.check_settings(settings):
            return False
        return self.generation.regenerate(self.current_id, settings)

    def retry_interrupted(self) -> bool:
        """Retry under a question whose answer was lost: ask it again."""
        if self.model_info is None:
            self.banner.show_message("The model is not loaded yet; Retry once it is.", "info")
            return False
        if self.generating:
            self.banner.show_message("Another answer is being generated; Retry when it is "
                                     "done.", "info")
            return False
        if self.current_id is None:
            return False
        return self.generation.retry(self.current_id, self.settings_panel.settings())

    # --- messages --------------------------------------------------------------------------
    def copy_message(self, message_id: int) -> None:
        """The message's text as it reads: an answer's Markdown rendered to plain text, a
        question as typed (it is shown as typed)."""
        message = self.store.message(message_id)
        if message is not None:
            text = message.text if message.role == "user" else markdown_plain(message.text)
            QGuiApplication.clipboard().setText(text)
            self.status.setText("Copied to the clipboard.")

    def copy_message_markdown(self, message_id: int) -> None:
        """The message's text as written, Markdown marks and all."""
        message = self.store.message(message_id)
        if message is not None:
            QGuiApplication.clipboard().setText(message.text)
            self.status.setText("Copied to the clipboard as Markdown.")

    def retry_message(self, message_id: int) -> bool:
        """Retry from a message's menu: the last answer (or a last question left unanswered) is
        answered again in place; an earlier question, or an earlier answer's question, is asked
        again at the end of the chat."""
        if self.generating or self.current_id is None:
            return False
        messages = self.store.messages(self.current_id)
        index = next((i for i, m in enumerate(messages) if m.id == message_id), None)
        if index is None:
            return False
        last = index == len(messages) - 1
        answered_last = (messages[index].role == "user" and index == len(messages) - 2
                         and messages[-1].role == "assistant")
        if last or answered_last:
            return self.regenerate()
        question = next((m for m in reversed(messages[:index + 1]) if m.role == "user"), None)
        return question is not None and self.send(question.text)

    def copy_last_answer(self) -> None:
        if self.current_id is None:
            return
        answers = [m for m in self.store.messages(self.current_id) if m.role == "assistant"]
        if answers:
            self.copy_message(answers[-1].id)

    def stored_trace(self, message_id: int, doing: str) -> Optional[trace_mod.Trace]:
        """The message's trace, or None with one sentence in the banner."""
        blob = self.store.trace_blob(message_id)
        if blob is None:
            self.banner.show_message(f"This answer has no stored denoising to {doing}.", "error")
            return None
        try:
            return trace_mod.decode(blob)
        except ValueError as error:
            self.banner.show_message(f"This answer's trace cannot be used to {doing}: {error}",
                                     "error")
            return None

    def replay_message(self, message_id: int) -> Optional[ReplayView]:
        """Replay the answer in place: its message becomes the canvas with a timeline."""
        view = self.transcript.view_of(message_id)
        if view is None:
            return None
        trace = self.stored_trace(message_id, "replay")
        if trace is None or trace.num_steps == 0:
            return None
        replay = view.start_replay(trace, self.colour_mode)
        self.canvas_trace = trace  # the inspector follows the replay
        replay.frame_shown.connect(self._replay_frame)
        self._replay_frame(replay.canvas.frame)
        return replay

    def _replay_frame(self, frame: CanvasFrame) -> None:
        """The inspector follows a replay (unless an answer is being generated)."""
        if not self.generating and frame is not None:
            self.live.show_now(frame)

    def export_animation(self, message_id: int, path: str | Path,
                         mode: Optional[str] = None) -> Optional[AnimationExport]:
        """Write the answer's denoising to `path` (.gif, .png for APNG, or a folder of PNGs)
        with the canvas's painter; the drawing is spread over event-loop turns and the encoding
        runs off the GUI thread. Returns the running export (its `finished`/`failed` signals)."""
        trace = self.stored_trace(message_id, "export")
        if trace is None:
            return None
        export = AnimationExport(trace, path, mode or self.colour_mode, self)
        self.exports.append(export)

        def finished(paths: list) -> None:
            shown = paths[0] if len(paths) == 1 else f"{len(paths)} files in {Path(path)}"
            self.status.setText(f"Animation written: {shown}")
            self._forget_export(export)

        def failed(message: str) -> None:
            self.banner.show_message(message, "error")
            self._forget_export(export)

        export.finished.connect(finished)
        export.failed.connect(failed)
        self.status.setText("Drawing the animation…")
        export.start()
        return export

    def _forget_export(self, export: AnimationExport) -> None:
        if export in self.exports:
            self.exports.remove(export)
        export.deleteLater()

    def choose_export_animation(self, message_id: int) -> None:
        gif = "Animated GIF (*.gif)"
        apng = "Animated PNG (*.png)"
        folder = "One PNG per step and a contact sheet (folder)"
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export animation", str(Path.home() / f"llada-answer-{message_id}.gif"),
            ";;".join((gif, apng, folder)))
        if not path:
            return
        if chosen == folder:
            path = str(Path(path).with_suffix("")) + "/"
        elif chosen == apng and not path.lower().endswith((".png", ".apng")):
            path += ".png"
        elif chosen == gif and not path.lower().endswith(".gif"):
            path += ".gif"
        self.export_animation(message_id, path)

    # --- help ----------------------------------------------------------------------------
    def show_about(self) -> AboutDialog:
        if self.about_dialog is not None:
            self.about_dialog.close()
            self.about_dialog.deleteLater()
        self.about_dialog = AboutDialog(self)      # rebuilt: the model may have changed
        self.about_dialog.show()
        self.about_dialog.raise_()
        return self.about_dialog

    def open_log(self) -> bool:
        return open_log_file(lambda text: self.banner.show_message(text, "info"))

    def show_settings(self) -> None:
        self.settings_dock.show()
        self.settings_dock.raise_()
        self.settings_panel.gen_length.slider.setFocus()

    # --- export / import (app.ui.transfer) -------------------------------------------------
    def export_conversation(self, path: str | Path, fmt: Optional[str] = None) -> Path:
        return export_mod.export(self.store, self.current_id, path, fmt)

    def choose_export(self) -> None:
        transfer.choose_export(self)

    def import_conversation(self, path: str | Path) -> int:
        conversation_id = export_mod.import_json(self.store,
                                                 Path(path).read_text(encoding="utf-8"))
        self.current_id = conversation_id
        self.refresh_conversations()
        self.open_conversation(conversation_id)
        return conversation_id

    def choose_import(self) -> None:
        transfer.choose_import(self)

    # --- closing ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        dialog = self.models.download_dialog
        if dialog is not None and dialog.running:
            dialog.reject()       # cancels; the partial file stays for a resume
        self.generation.stop()
        self.context.timer.stop()
        for view in self.transcript.views:
            view.end_replay()
        self.workers.shutdown()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)
