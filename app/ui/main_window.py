"""The main window: conversations, transcript, live denoising canvas, composer, settings."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget, QFileDialog, QHBoxLayout, QInputDialog, QLabel, QMainWindow, QMessageBox,
    QPushButton, QSplitter, QStackedWidget, QToolButton, QVBoxLayout, QWidget,
)

from app import export as export_mod
from app import trace as trace_mod
from app.store import Message, Store
from app.models.catalog import recommended_entry
from app.models.defaults import DEMO_NOTE, is_bundled_demo
from app.ui.canvas import CanvasFrame
from app.ui.canvas_panel import CanvasPanel
from app.ui.conversation_list import ConversationList
from app.ui.models_ui import DownloadDialog, ModelManager, WelcomePage, ask_to_continue
from app.ui.replay import ReplayDialog
from app.ui.settings_panel import SettingsPanel
from app.ui.transcript import Composer, Transcript
from app.worker import WorkerThread
from llada_core.settings import SamplerSettings

EXPORT_FILTERS = "Markdown (*.md);;JSON (*.json);;HTML (*.html);;PDF (*.pdf)"


def shortcut(standard: QKeySequence.StandardKey, fallback: str) -> list[QKeySequence]:
    """The platform's standard key for an action, with `fallback` where the platform has none."""
    keys = QKeySequence.keyBindings(standard)
    fallback_key = QKeySequence(fallback)
    if not any(k == fallback_key for k in keys):
        keys = list(keys) + [fallback_key]
    return keys


def app_icon() -> QIcon:
    return QIcon(str(Path(__file__).resolve().parents[1] / "resources" / "icon.svg"))


class Banner(QWidget):
    """An inline message above the transcript: errors and notices, never a traceback."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton()
        self.action.setObjectName("bannerAction")
        self.action.hide()
        self._action_callback = None
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
        self.hide()

    def _act(self) -> None:
        if self._action_callback is not None:
            self._action_callback()

    def show_message(self, text: str, kind: str = "error", action: tuple | None = None) -> None:
        """Show `text`; `action` is an optional (button label, callback)."""
        self._action_callback = action[1] if action else None
        self.action.setText(action[0] if action else "")
        self.action.setVisible(action is not None)
        colours = {"error": ("#f8d7da", "#58151c"), "info": ("#dbe9fb", "#0b2d5b")}
        background, foreground = colours.get(kind, colours["info"])
        self.setStyleSheet(f"#banner {{ background: {background}; border-radius: 6px; }}"
                           f" #banner QLabel {{ color: {foreground}; }}"
                           f" #banner QToolButton {{ color: {foreground}; }}")
        self.kind = kind
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()


class MainWindow(QMainWindow):
    model_loaded = Signal(dict)
    model_failed = Signal(str)
    answer_stored = Signal(int)         # message id
    generation_failed = Signal(str)
    frame_received = Signal(int, object)  # request id, StepFrame (in the GUI thread)

    def __init__(self, store: Store, *, model: Optional[str] = None,
                 backend: Optional[str] = None, load_options: Optional[dict] = None,
                 default_settings: Optional[dict] = None, step_delay: float = 0.0,
                 hub_cache_dir: Optional[str] = None, hub_endpoint: Optional[str] = None):
        super().__init__()
        self.hub_cache_dir = hub_cache_dir      # None: huggingface_hub's standard cache
        self.hub_endpoint = hub_endpoint        # None: $HF_ENDPOINT or the Hub
        self.loading = False
        self.download_dialog: Optional[DownloadDialog] = None
        self.model_manager: Optional[ModelManager] = None
        self.setWindowTitle("LLaDA Desktop")
        self.setWindowIcon(app_icon())
        self.store = store
        self.backend_name = backend
        self.load_options = load_options or {}
        self.default_settings = SamplerSettings(**(default_settings or {})).to_dict()
        self.model_info: Optional[dict] = None
        self.model_path: Optional[str] = None
        self.current_id: Optional[int] = None
        self.request: Optional[dict] = None
        self._request_ids = itertools.count(1)
        self.replays: list[ReplayDialog] = []

        self.workers = WorkerThread(step_delay, self)
        worker = self.workers.worker
        worker.loading.connect(self._on_loading)
        worker.loaded.connect(self._on_loaded)
        worker.load_failed.connect(self._on_load_failed)
        worker.started.connect(self._on_started)
        worker.frame.connect(self._on_frame)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)

        self._build()
        self._build_actions()
        self.refresh_conversations()
        if store.notice:
            self.banner.show_message(store.notice, "info")
        ids = self.conversations.ids()
        if ids:
            self.open_conversation(ids[0])
        else:
            self.new_conversation()
        self._follow_color_scheme()
        if model:
            self.load_model(model)
        else:
            self.status.setText("No model loaded — File ▸ Open model folder…")
        self.update_welcome()

    # --- building --------------------------------------------------------------------------
    def _build(self) -> None:
        self.conversations = ConversationList()
        self.banner = Banner()
        self.transcript = Transcript()
        self.live = CanvasPanel("Denoising")
        self.live.setMinimumHeight(110)
        self.composer = Composer()
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")
        self.send_button.setMinimumWidth(84)
        self.send_button.setDefault(True)

        composer_row = QHBoxLayout()
        composer_row.addWidget(self.composer, 1)
        composer_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        composer_box = QWidget()
        composer_box.setLayout(composer_row)
        composer_row.setContentsMargins(0, 0, 0, 0)

        self.centre_split = QSplitter(Qt.Orientation.Vertical)
        self.centre_split.addWidget(self.transcript)
        self.centre_split.addWidget(self.live)
        self.centre_split.setStretchFactor(0, 3)
        self.centre_split.setStretchFactor(1, 2)
        self.centre_split.setChildrenCollapsible(False)
        self.centre_split.setSizes([430, 230])

        self.welcome = WelcomePage()
        self.welcome.download_requested.connect(self.download_model)
        self.welcome.open_requested.connect(self.choose_model)
        self.welcome.demo_requested.connect(self.request_model)
        self.welcome.use_requested.connect(self.request_model)
        self.centre_stack = QStackedWidget()
        self.centre_stack.addWidget(self.centre_split)
        self.centre_stack.addWidget(self.welcome)
        self.composer_box = composer_box

        centre = QWidget()
        column = QVBoxLayout(centre)
        column.setContentsMargins(6, 6, 6, 6)
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

        self.status = QLabel()
        self.statusBar().addWidget(self.status, 1)

        self.conversations.selected.connect(self.open_conversation)
        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.rename_requested.connect(lambda cid: self.rename_conversation(cid))
        self.conversations.delete_requested.connect(lambda cid: self.delete_conversation(cid))
        self.conversations.search_changed.connect(lambda _: self.refresh_conversations())
        self.transcript.copy_requested.connect(self.copy_message)
        self.transcript.replay_requested.connect(self.replay_message)
        self.composer.submitted.connect(self.send)
        self.send_button.clicked.connect(self._send_or_stop)
        self.settings_panel.changed.connect(self._settings_changed)
        self.resize(1180, 760)

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        file_menu = self.menuBar().addMenu("&File")
        chat_menu = self.menuBar().addMenu("&Chat")
        view_menu = self.menuBar().addMenu("&View")

        def action(menu, text, slot, keys=None) -> QAction:
            act = QAction(text, self)
            if keys:
                act.setShortcuts(keys)
            act.triggered.connect(lambda checked=False: slot())
            menu.addAction(act)
            self.addAction(act)
            return act

        self.new_action = action(file_menu, "New chat", self.new_conversation, shortcut(K.New, "Ctrl+N"))
        self.open_model_action = action(file_menu, "Open model folder…", self.choose_model,
                                        shortcut(K.Open, "Ctrl+O"))
        self.models_action = action(file_menu, "Models…", self.show_model_manager,
                                    [QKeySequence("Ctrl+Shift+M")])
        self.import_action = action(file_menu, "Import conversation (JSON)…", self.choose_import)
        self.export_action = action(file_menu, "Export conversation…", self.choose_export,
                                    [QKeySequence("Ctrl+E")])
        file_menu.addSeparator()
        self.quit_action = action(file_menu, "Quit", self.close, shortcut(K.Quit, "Ctrl+Q"))
        self.stop_action = action(chat_menu, "Stop", self.stop, [QKeySequence(Qt.Key.Key_Escape)])
        self.regenerate_action = action(chat_menu, "Regenerate last answer", self.regenerate,
                                        [QKeySequence("Ctrl+R")])
        self.copy_action = action(chat_menu, "Copy last answer", self.copy_last_answer)
        self.settings_action = action(view_menu, "Settings", self.show_settings,
                                      shortcut(K.Preferences, "Ctrl+,"))
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        view_menu.addSeparator()
        for key, label in (("state", "Colour by state"), ("confidence", "Colour by confidence"),
                           ("reveal", "Colour by reveal order")):
            action(view_menu, label, lambda k=key: self.live.set_mode(k))

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

    def new_conversation(self) -> int:
        """Start a conversation (an empty current one is reused rather than piling up)."""
        if (self.current_id is not None and self.store.conversation(self.current_id) is not None
                and not self.store.messages(self.current_id) and not self.generating):
            self.store.set_conversation_settings(self.current_id, self.default_settings)
            self.settings_panel.set_settings(self.default_settings)
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
        self.show_messages()
        if not self.generating:
            self.show_last_answer_on_canvas()
        if self.conversations.current_id() != conversation_id:
            self.refresh_conversations()
        self.setWindowTitle(f"{conversation.title} — LLaDA Desktop")

    def show_messages(self) -> None:
        self.transcript.set_messages(self.store.messages(self.current_id)
                                     if self.current_id is not None else [])
        self.update_welcome()

    # --- welcome page ----------------------------------------------------------------------
    @property
    def welcome_shown(self) -> bool:
        return self.centre_stack.currentWidget() is self.welcome

    def update_welcome(self) -> None:
        """With no model (and none loading) and an empty chat, the welcome page takes the centre."""
        if not hasattr(self, "centre_stack"):
            return
        empty = self.current_id is None or not self.transcript.views
        show = self.model_info is None and not self.loading and empty
        if show and not self.welcome_shown:
            self.welcome.refresh(self.model_on_disk())
        self.centre_stack.setCurrentWidget(self.welcome if show else self.centre_split)
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
        answers = [m for m in self.transcript.views if m.message.has_trace]
        blob = self.store.trace_blob(answers[-1].message.id) if answers else None
        try:
            trace = trace_mod.decode(blob) if blob else None
        except ValueError:
            trace = None
        if trace is None or trace.num_steps == 0:
            self.live.canvas.clear()
            self.live.caption.setText(self.live.title)
            return
        last = trace.num_steps - 1
        self.live.show_now(CanvasFrame.of(trace.frame(last), trace.pieces, trace.block_length,
                                          trace.num_steps))

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
            if conversation_id == self.current_id:
                self.setWindowTitle(f"{title} — LLaDA Desktop")

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

    def _settings_changed(self, settings: dict) -> None:
        if self.current_id is not None:
            self.store.set_conversation_settings(self.current_id, settings)

    # --- model -----------------------------------------------------------------------------
    def load_model(self, path: str) -> None:
        """Load without asking (the command line's --model, the last model)."""
        self.model_info = None
        self.model_path = str(path)
        self.loading = True
        self.update_welcome()
        self.workers.request_load.emit(str(path), self.backend_name, dict(self.load_options))

    def memory_limit(self):
        from app.models.fit import memory_limit

        return memory_limit(self.backend_name, self.load_options.get("device"))

    def request_model(self, path: str) -> bool:
        """Load a model the user picked: check the folder and whether it fits in memory first."""
        from app.models.fit import Workload, check_fit
        from app.models.local import validate_model_folder
        from llada_core.checkpoint import CheckpointError

        try:
            validate_model_folder(path)
            settings = self.settings_panel.settings()
            workload = Workload(gen_length=settings["gen_length"], cfg_scale=settings["cfg_scale"])
            report = check_fit(path, self.memory_limit(), backend=self.backend_name,
                               dtype=self.load_options.get("dtype"), workload=workload)
        except (CheckpointError, OSError) as error:
            self.banner.show_message(f"This folder cannot be used as a model: {error}", "error")
            return False
        if not report.fits and not ask_to_continue(self, report):
            self.status.setText("Loading cancelled: the model may not fit in memory.")
            return False
        self.load_model(path)
        return True

    def open_folder(self, folder: str) -> bool:
        """A local folder: validated, remembered in the model list, then loaded."""
        from app.models.local import add_folder
        from llada_core.checkpoint import CheckpointError

        try:
            add_folder(self.store, folder)
        except CheckpointError as error:
            self.banner.show_message(f"This folder cannot be used as a model: {error}", "error")
            return False
        return self.request_model(folder)

    def choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a LLaDA model folder")
        if folder:
            self.open_folder(folder)

    def download_model(self, repo_id: str) -> DownloadDialog:
        """Open the download dialog for `repo_id`; the model loads once it is complete."""
        if self.download_dialog is not None and self.download_dialog.running:
            self.download_dialog.raise_()
            return self.download_dialog
        dialog = DownloadDialog(repo_id, self, cache_dir=self.hub_cache_dir,
                                endpoint=self.hub_endpoint)
        dialog.downloaded.connect(self._downloaded)
        self.download_dialog = dialog
        dialog.show()
        dialog.start()
        return dialog

    def _downloaded(self, folder: str) -> None:
        if self.model_manager is not None:
            self.model_manager.refresh()
        self.request_model(folder)

    def show_model_manager(self) -> ModelManager:
        if self.model_manager is None:
            manager = ModelManager(self.store, self, cache_dir=self.hub_cache_dir)
            manager.use_requested.connect(self.request_model)
            manager.download_requested.connect(self.download_model)
            self.model_manager = manager
        self.model_manager.refresh()
        self.model_manager.show()
        self.model_manager.raise_()
        return self.model_manager

    def _on_loading(self, path: str) -> None:
        self.status.setText(f"Loading {path} …")
        self.send_button.setEnabled(False)

    def _on_loaded(self, info: dict) -> None:
        self.model_info = info
        self.loading = False
        self.update_welcome()
        name = Path(info["path"]).name or info["path"]
        device = f", {info['device']}" if info.get("device") else ""
        self.status.setText(f"Model: {name} ({info['backend']}{device})")
        self.store.set_preference("last_model", info["path"])
        self.send_button.setEnabled(True)
        if not self.banner.isHidden() and getattr(self.banner, "kind", "") == "error":
            self.banner.hide()
        if is_bundled_demo(info["path"]):
            entry = recommended_entry()
            self.banner.show_message(DEMO_NOTE, "info", action=(
                f"Get {entry.name}…", lambda: self.download_model(entry.repo_id)))
        self.model_loaded.emit(info)

    def _on_load_failed(self, message: str) -> None:
        self.model_info = None
        self.loading = False
        self.update_welcome()
        self.status.setText("No model loaded — File ▸ Open model folder…")
        self.send_button.setEnabled(True)
        self.banner.show_message(message, "error")
        self.model_failed.emit(message)

    # --- sending ---------------------------------------------------------------------------
    @property
    def generating(self) -> bool:
        return self.request is not None

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
        try:
            SamplerSettings(**settings)
        except ValueError as error:
            self.banner.show_message(f"These settings cannot be used: {error}", "error")
            return False
        if self.current_id is None or self.store.conversation(self.current_id) is None:
            self.new_conversation()
        conversation_id = self.current_id
        earlier = self.store.messages(conversation_id)
        plan = self.prompt_plan(earlier, text)
        self.store.add_message(conversation_id, "user", text)
        conversation = self.store.conversation(conversation_id)
        if conversation.title == "New chat":
            title = " ".join(text.split())
            self.store.rename_conversation(conversation_id,
                                           title[:48] + ("…" if len(title) > 48 else ""))
        self.composer.clear()
        self.refresh_conversations()
        self.show_messages()
        self._start(conversation_id, plan, settings)
        return True

    def prompt_plan(self, earlier: list[Message], user_text: str) -> dict:
        """How the worker builds the next prompt (see app.store's module docstring)."""
        intact = all(m.role == "user" or (m.prompt_ids is not None and m.has_trace
                                           and not m.stats.get("stopped")) for m in earlier)
        if earlier and (earlier[-1].role != "assistant" or not intact):
            return {"messages": [{"role": m.role, "content": m.text} for m in earlier],
                    "user_text": user_text}
        history_ids = None
        if earlier:
            blob = self.store.trace_blob(earlier[-1].id)
            answer = trace_mod.decode(blob).tokens
            history_ids = list(earlier[-1].prompt_ids) + answer
        return {"history_ids": history_ids, "user_text": user_text}

    def _start(self, conversation_id: int, plan: dict, settings: dict) -> None:
        request_id = next(self._request_ids)
        self.request = {"id": request_id, "conversation_id": conversation_id,
                        "settings": settings, "frames": 0, "started": time.time()}
        self.live.canvas.clear()
        self.live.caption.setText("Denoising — starting…")
        self.send_button.setText("Stop")
        self.send_button.setToolTip("Stop this answer (Esc)")
        self.status.setText("Generating…")
        self.workers.request_generate.emit(request_id, plan, settings)

    def stop(self) -> None:
        if self.request is not None:
            self.workers.worker.stop(self.request["id"])
            self.status.setText("Stopping at the next step…")

    def regenerate(self) -> bool:
        """Answer the last user message again (replacing the last answer)."""
        if self.generating or self.current_id is None or self.model_info is None:
            return False
        messages = self.store.messages(self.current_id)
        if not messages:
            return False
        settings = self.settings_panel.settings()
        last = messages[-1]
        if last.role == "assistant":
            self.store.delete_message(last.id)
            messages = messages[:-1]
            if last.prompt_ids is not None:
                self.show_messages()
                self._start(self.current_id, {"prompt_ids": last.prompt_ids}, settings)
                return True
        if not messages or messages[-1].role != "user":
            return False
        user = messages[-1]
        plan = self.prompt_plan(messages[:-1], user.text)
        self.show_messages()
        self._start(self.current_id, plan, settings)
        return True

    def _on_started(self, request_id: int, info: dict) -> None:
        if self.request and self.request["id"] == request_id:
            self.request["prompt_ids"] = info["prompt_ids"]

    def _on_frame(self, request_id: int, frame, pieces) -> None:
        if not self.request or self.request["id"] != request_id:
            return
        self.request["frames"] += 1
        settings = self.request["settings"]
        self.live.set_frame(CanvasFrame.of(frame, pieces, settings["block_length"],
                                           settings["steps"]))
        self.frame_received.emit(request_id, frame)

    def _on_finished(self, request_id: int, result: dict) -> None:
        if not self.request or self.request["id"] != request_id:
            return
        request, self.request = self.request, None
        self.live.canvas.flush()
        self._idle()
        if self.store.conversation(request["conversation_id"]) is None:
            self.status.setText("The conversation was deleted; the answer was not kept.")
            return
        if result.get("trace") is None:
            self.status.setText("Stopped before the first step; nothing was kept.")
            return
        message_id = self.store.add_message(
            request["conversation_id"], "assistant", result["text"],
            settings=request["settings"], stats=result["stats"],
            prompt_ids=result["prompt_ids"], trace=result["trace"])
        stats = result["stats"]
        self.status.setText(
            ("Stopped: " if result["stopped"] else "Done: ")
            + export_mod.stats_line(stats))
        if request["conversation_id"] == self.current_id:
            self.show_messages()
        self.refresh_conversations()
        self.answer_stored.emit(message_id)

    def _on_failed(self, request_id: int, message: str) -> None:
        if not self.request or self.request["id"] != request_id:
            return
        self.request = None
        self._idle()
        self.banner.show_message(message, "error")
        self.status.setText("The answer failed.")
        self.generation_failed.emit(message)

    def _idle(self) -> None:
        self.send_button.setText("Send")
        self.send_button.setToolTip("Send (Enter)")

    # --- messages --------------------------------------------------------------------------
    def copy_message(self, message_id: int) -> None:
        message = self.store.message(message_id)
        if message is not None:
            QGuiApplication.clipboard().setText(message.text)
            self.status.setText("Copied to the clipboard.")

    def copy_last_answer(self) -> None:
        if self.current_id is None:
            return
        answers = [m for m in self.store.messages(self.current_id) if m.role == "assistant"]
        if answers:
            self.copy_message(answers[-1].id)

    def replay_message(self, message_id: int) -> Optional[ReplayDialog]:
        blob = self.store.trace_blob(message_id)
        if blob is None:
            return None
        try:
            trace = trace_mod.decode(blob)
        except ValueError as error:
            self.banner.show_message(f"This answer's trace cannot be replayed: {error}")
            return None
        dialog = ReplayDialog(trace, "Replay — LLaDA Desktop", self)
        dialog.panel.set_mode(self.live.mode.currentData())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_: self.replays.remove(dialog)
                                 if dialog in self.replays else None)
        self.replays.append(dialog)
        dialog.show()
        return dialog

    def show_settings(self) -> None:
        self.settings_dock.show()
        self.settings_dock.raise_()
        self.settings_panel.gen_length.slider.setFocus()

    # --- export / import -------------------------------------------------------------------
    def export_conversation(self, path: str | Path, fmt: Optional[str] = None) -> Path:
        return export_mod.export(self.store, self.current_id, path, fmt)

    def choose_export(self) -> None:
        if self.current_id is None:
            return
        conversation = self.store.conversation(self.current_id)
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in conversation.title)
        path, chosen = QFileDialog.getSaveFileName(self, "Export conversation",
                                                   f"{safe.strip() or 'conversation'}.md",
                                                   EXPORT_FILTERS)
        if not path:
            return
        fmt = Path(path).suffix.lstrip(".") or chosen.split("(*.")[-1].rstrip(")")
        if not Path(path).suffix:
            path = f"{path}.{fmt}"
        try:
            written = self.export_conversation(path, fmt)
        except (OSError, ValueError) as error:
            self.banner.show_message(f"Could not export: {error}")
            return
        self.status.setText(f"Exported to {written}")

    def import_conversation(self, path: str | Path) -> int:
        conversation_id = export_mod.import_json(self.store,
                                                 Path(path).read_text(encoding="utf-8"))
        self.current_id = conversation_id
        self.refresh_conversations()
        self.open_conversation(conversation_id)
        return conversation_id

    def choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import conversation", "", "JSON (*.json)")
        if not path:
            return
        try:
            self.import_conversation(path)
        except (OSError, ValueError) as error:
            self.banner.show_message(f"Could not import {Path(path).name}: {error}")

    # --- closing ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        if self.download_dialog is not None and self.download_dialog.running:
            self.download_dialog.reject()       # cancels; the partial file stays for a resume
        if self.request is not None:
            self.workers.worker.stop(self.request["id"])
        for dialog in list(self.replays):
            dialog.close()
        self.workers.shutdown()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)
