"""The model side of the window: the welcome page, the download dialog (with its worker
thread), the fit-in-memory question and the model manager."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QThread, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
    QMessageBox, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from app.models import convert as conversion
from app.models import local
from app.models.catalog import (
    CATALOG, CatalogEntry, bundled_demo_model, catalog_entry, recommended_entry,
)
from app.models.units import format_bytes
from app.models.download import (
    DownloadCancelled, DownloadError, DownloadProgress, ModelDownload, cached_model, delete_model,
    downloaded_snapshot,
)
from app.models.defaults import DEMO_EXAMPLES
from app.models.fit import FitReport, model_needs
from app.ui.examples import ExamplePrompts
from llada_core.checkpoint import CheckpointError

log = logging.getLogger(__name__)

WHAT_IS_LLADA = (
    "LLaDA is a language model that writes by diffusion: it starts from an answer made entirely "
    "of masks and fills in the tokens it is most sure of, step by step, in any order. "
    "LLaDA Desktop runs it on this computer and lets you watch every answer unmask.")


class JobThread(QThread):
    """Runs one job that ends in a model folder (a download, a conversion) off the GUI thread;
    its signals arrive queued in the GUI thread. A subclass makes `job` (with run() and cancel())
    and says which errors mean cancelled and failed, and what an unexpected error reads as."""

    progress = Signal(object)       # the job's progress record
    succeeded = Signal(str)         # the model folder
    failed = Signal(str)            # one sentence
    cancelled = Signal(str)
    cancelled_error: type[Exception] = Exception
    failed_error: type[Exception] = Exception
    job = None

    def cancel(self) -> None:
        self.job.cancel()

    def unexpected(self, error: Exception) -> str:
        raise NotImplementedError

    def run(self) -> None:  # noqa: D401 - QThread override, runs in the new thread
        try:
            folder = self.job.run()
        except self.cancelled_error as error:
            self.cancelled.emit(str(error))
        except self.failed_error as error:
            self.failed.emit(str(error))
        except Exception as error:  # noqa: BLE001 - never a traceback in the window
            log.exception("%s failed", type(self).__name__)
            self.failed.emit(self.unexpected(error))
        else:
            self.succeeded.emit(str(folder))


class DownloadThread(JobThread):
    cancelled_error, failed_error = DownloadCancelled, DownloadError

    def __init__(self, repo_id: str, *, cache_dir=None, endpoint=None, parent=None):
        super().__init__(parent)
        self.job = ModelDownload(repo_id, cache_dir=cache_dir, endpoint=endpoint,
                                 on_progress=self.progress.emit)

    def unexpected(self, error: Exception) -> str:
        return f"The download failed: {type(error).__name__}: {error}"


class ConvertThread(JobThread):
    cancelled_error = conversion.ConversionCancelled
    failed_error = conversion.ConversionError

    def __init__(self, source: str, target: str, parent=None):
        super().__init__(parent)
        self.job = conversion.ModelConversion(source, target, on_progress=self.progress.emit)

    def unexpected(self, error: Exception) -> str:
        return f"The conversion failed: {type(error).__name__}: {error}."


class JobDialog(QDialog):
    """The progress of one background job that ends in a model folder (a download, a
    conversion): a bar, a line of detail, Cancel; after a stop, the reason, a button to go again
    and Close. The job is a QThread with progress, succeeded, failed and cancelled signals and a
    cancel() method, made by make_thread(); subclasses say what the folder means (finish())."""

    WAIT_MS = 30000  # how long closing waits for a cancelled job to stop

    def __init__(self, window_title: str, header: list[QWidget], detail: str, again: str,
                 parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.thread_: Optional[QThread] = None
        self.folder: Optional[str] = None
        self.setWindowTitle(window_title)
        self.setMinimumWidth(520)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.bar.setFormat("%p%")
        self.detail = QLabel(detail)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.hide()
        self.cancel_button = QPushButton("Cancel")
        self.again_button = QPushButton(again)
        self.again_button.hide()
        self.close_button = QPushButton("Close")
        self.close_button.hide()
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.again_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        self.column = QVBoxLayout(self)
        for widget in header:
            self.column.addWidget(widget)
        self.column.addSpacing(6)
        for widget in (self.bar, self.detail, self.message):
            self.column.addWidget(widget)
        self.column.addLayout(buttons)
        self.cancel_button.clicked.connect(self.cancel)
        self.again_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)

    def make_thread(self) -> QThread:
        raise NotImplementedError

    def finish(self, folder: str) -> None:
        """The job succeeded with `folder`."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.thread_ is not None and self.thread_.isRunning()

    def start(self) -> None:
        if self.running:
            return
        for widget in (self.message, self.again_button, self.close_button):
            widget.hide()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        thread = self.make_thread()
        thread.progress.connect(self.show_progress)
        thread.succeeded.connect(self._succeeded)
        thread.failed.connect(self._failed)
        thread.cancelled.connect(self._cancelled)
        self.thread_ = thread
        thread.start()

    def cancel(self) -> None:
        if self.running:
            self.thread_.cancel()
            self.cancel_button.setEnabled(False)
            self.detail.setText("Cancelling…")

    def show_progress(self, progress) -> None:
        self.bar.setValue(int(progress.fraction * 1000))
        if self.cancel_button.isEnabled():  # "Cancelling…" stays until the job stops
            self.detail.setText(progress.text())

    def _succeeded(self, folder: str) -> None:
        self.folder = folder
        self.bar.setValue(1000)
        self.cancel_button.hide()
        self.finish(folder)
        self.accept()

    def _failed(self, text: str) -> None:
        self.stopped(text)

    def _cancelled(self, text: str) -> None:
        self.stopped(text)

    def stopped(self, text: str, detail: str = "Stopped.") -> None:
        self.detail.setText(detail)
        self.message.setText(text)
        self.message.show()
        self.cancel_button.hide()
        self.again_button.show()
        self.close_button.show()

    def wait(self, ms: Optional[int] = None) -> None:
        if self.thread_ is not None:
            self.thread_.wait(ms or self.WAIT_MS)

    def reject(self) -> None:
        if self.running:
            self.thread_.cancel()
            self.thread_.wait(self.WAIT_MS)
        super().reject()


class ConvertDialog(JobDialog):
    """Converting a PyTorch checkpoint to MLX 8-bit: progress by tensor, Cancel, Retry."""

    converted = Signal(str)         # the finished folder
    WAIT_MS = 60000

    def __init__(self, source: str, target: str, name: str, parent: Optional[QWidget] = None):
        self.source, self.target = source, target
        title = QLabel(f"<b>{name}</b> to MLX 8-bit")
        title.setTextFormat(Qt.TextFormat.RichText)
        where = QLabel(f"Into {target}")
        where.setWordWrap(True)
        where.setStyleSheet("color: palette(placeholder-text);")
        super().__init__("Convert to MLX 8-bit — LLaDA Desktop", [title, where],
                         "Reading the checkpoint…", "Retry", parent)
        self.retry_button = self.again_button

    def start(self) -> None:
        if not self.running:
            self.bar.setValue(0)
        super().start()

    def make_thread(self) -> ConvertThread:
        return ConvertThread(self.source, self.target, parent=self)

    def finish(self, folder: str) -> None:
        self.converted.emit(folder)


class DownloadDialog(JobDialog):
    """Progress (bytes, speed, time left), Cancel, and Resume/Retry after a cancel or an error."""

    downloaded = Signal(str)        # the snapshot folder, once complete

    def __init__(self, repo_id: str, parent: Optional[QWidget] = None, *, cache_dir=None,
                 endpoint=None):
        self.repo_id = repo_id
        self.cache_dir, self.endpoint = cache_dir, endpoint
        self.last_progress: Optional[DownloadProgress] = None
        entry = catalog_entry(repo_id)
        title = QLabel(f"<b>{entry.name if entry else repo_id}</b>")
        title.setTextFormat(Qt.TextFormat.RichText)
        subtitle = QLabel(repo_id + (f" · {entry.size_text} on disk · needs about "
                                     f"{entry.memory_text} of memory" if entry else ""))
        subtitle.setWordWrap(True)
        subtitle.setStyleSheet("color: palette(placeholder-text);")
        super().__init__("Download model — LLaDA Desktop", [title, subtitle],
                         "Asking the Hugging Face Hub for the model's files…", "Resume", parent)
        self.resume_button = self.again_button
        self.detail.setObjectName("downloadDetail")
        note = QLabel("Files go to the Hugging Face cache and are shared with other tools; "
                      "an interrupted download resumes where it stopped.")
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.column.addWidget(note)
        # speed and time left stay honest while the connection stalls (no chunks, no signals)
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(1000)
        self.refresh_timer.timeout.connect(self._refresh)

    def start(self) -> None:
        if self.running:
            return
        super().start()
        self.refresh_timer.start()

    def make_thread(self) -> DownloadThread:
        return DownloadThread(self.repo_id, cache_dir=self.cache_dir, endpoint=self.endpoint,
                              parent=self)

    def finish(self, folder: str) -> None:
        self.downloaded.emit(folder)

    def _refresh(self) -> None:
        if not self.running:
            self.refresh_timer.stop()
        elif self.last_progress is not None and self.cancel_button.isEnabled():
            self.show_progress(self.thread_.job.progress())

    def show_progress(self, progress: DownloadProgress) -> None:
        self.last_progress = progress
        self.bar.setValue(int(progress.fraction * 1000))
        self.detail.setText(progress.text())

    def _failed(self, text: str) -> None:
        self.stopped_download(text, "Retry")

    def _cancelled(self, text: str) -> None:
        self.stopped_download(text, "Resume")

    def stopped_download(self, text: str, again: str) -> None:
        progress = self.last_progress
        self.stopped(text, f"Stopped at {format_bytes(progress.done)} of "
                           f"{format_bytes(progress.total)}"
                     if progress and progress.total else "Not started.")
        self.message.setStyleSheet("color: #b3261e;" if again == "Retry" else "")
        self.again_button.setText(again)
        self.message.setMinimumHeight(self.message.heightForWidth(max(self.message.width(), 400)))
        self.adjustSize()


class WelcomePage(QWidget):
    """Shown while no model is loaded: what LLaDA is, and how to get a model."""

    download_requested = Signal(str)    # repo id
    open_requested = Signal()
    demo_requested = Signal(str)        # folder
    use_requested = Signal(str)         # folder of a model already on disk
    example_requested = Signal(str, str)  # the demo's folder, a prompt to send once it loads

    def __init__(self, recommended: Optional[CatalogEntry] = None,
                 parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.setObjectName("welcome")
        self.recommended = recommended or recommended_entry()
        heading = QLabel("Welcome to LLaDA Desktop")
        heading.setStyleSheet("font-size: 22px; font-weight: 600;")
        intro = QLabel(WHAT_IS_LLADA)
        intro.setWordWrap(True)
        # At most 540 px wide; a narrower window wraps it into more lines (and may scroll).
        intro.setMinimumWidth(320)
        intro.setMaximumWidth(540)
        intro_row = QHBoxLayout()
        intro_row.addStretch(1)
        intro_row.addWidget(intro, 100)
        intro_row.addStretch(1)
        self.download_button = QPushButton(
            f"Download {self.recommended.name} — {self.recommended.size_text}")
        self.download_button.setObjectName("welcomeDownload")
        self.download_button.setDefault(True)
        self.download_button.setToolTip(
            f"{self.recommended.repo_id}, the recommended model for this computer; "
            f"it needs about {self.recommended.memory_text} of memory")
        hint = QLabel(f"Recommended for this computer · {self.recommended.repo_id}")
        hint.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.open_button = QPushButton("Open a model folder…")
        self.demo_button = QPushButton("Try the small demo model")
        self.demo_examples = ExamplePrompts("or ask the demo model right away:")
        self.demo_examples.chosen.connect(self._demo_example)
        self.use_button = QPushButton()
        self.use_button.hide()
        self._use_path: Optional[str] = None
        column = QVBoxLayout(self)
        column.addStretch(2)
        column.addWidget(heading, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addLayout(intro_row)
        column.addSpacing(14)
        for widget in (self.use_button, self.download_button, hint, self.open_button,
                       self.demo_button):
            widget.setMinimumWidth(320) if isinstance(widget, QPushButton) else None
            column.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addSpacing(4)
        column.addWidget(self.demo_examples, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addStretch(3)
        self.download_button.clicked.connect(
            lambda: self.download_requested.emit(self.recommended.repo_id))
        self.open_button.clicked.connect(self.open_requested.emit)
        self.demo_button.clicked.connect(self._demo)
        self.use_button.clicked.connect(lambda: self._use_path and self.use_requested.emit(
            self._use_path))
        self.refresh()

    def refresh(self, available: Optional[tuple[str, str]] = None) -> None:
        """Show the demo button only when a bundled demo exists; offer a model already here."""
        demo = bundled_demo_model()
        self.demo_button.setVisible(demo is not None)
        self.demo_examples.set_prompts(list(DEMO_EXAMPLES) if demo is not None else [])
        if available:
            name, path = available
            self._use_path = path
            self.use_button.setText(f"Use {name}, already on this computer")
            self.use_button.show()
        else:
            self._use_path = None
            self.use_button.hide()

    def _demo_example(self, prompt: str) -> None:
        folder = bundled_demo_model()
        if folder is not None:
            self.example_requested.emit(str(folder), prompt)

    def _demo(self) -> None:
        folder = bundled_demo_model()
        if folder is not None:
            self.demo_requested.emit(str(folder))


def _same_folder(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def ask_to_continue(parent: QWidget, report: FitReport) -> bool:
    """The model may not fit: say so with the numbers and let the user choose."""
    box = QMessageBox(parent)
    box.setObjectName("fitWarning")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("This model may not fit in memory")
    box.setText("This model may not fit in this computer's memory.")
    box.setInformativeText(report.message() + " Loading it anyway may make the computer very "
                           "slow or fail. A smaller (quantized) model is safer.")
    load = box.addButton("Load anyway", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is load


class ModelManager(QDialog):
    """Known models and added folders: download, use, delete from disk, add/remove folders, and
    convert a PyTorch checkpoint to MLX 8-bit when the MLX backend is installed."""

    use_requested = Signal(str)         # folder to load
    download_requested = Signal(str)    # repo id

    COLUMNS = ["Model", "Backend", "Size on disk", "Memory", "Status"]

    def __init__(self, store, parent: Optional[QWidget] = None, *, cache_dir=None):
        super().__init__(parent)
        self.store = store
        self.cache_dir = cache_dir
        self.setWindowTitle("Models — LLaDA Desktop")
        self.resize(820, 380)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.use_button = QPushButton("Use")
        self.download_button = QPushButton("Download")
        self.delete_button = QPushButton("Delete from disk…")
        self.add_button = QPushButton("Add a folder…")
        self.remove_button = QPushButton("Remove from list")
        self.convert_button = QPushButton("Convert to MLX 8-bit…")
        self.convert_button.setToolTip(
            "Write an 8-bit MLX copy of this PyTorch checkpoint into the app's data folder: "
            "about half the size, and it runs on the MLX backend.")
        self.convert_button.setVisible(conversion.mlx_available())
        self.convert_dialog: Optional[ConvertDialog] = None
        self.status = QLabel()
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        for button in (self.add_button, self.remove_button):
            row.addWidget(button)
        row.addStretch(1)
        for button in (self.convert_button, self.delete_button, self.download_button,
                       self.use_button):
            row.addWidget(button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(self.table, 1)
        column.addLayout(row)
        column.addWidget(self.status)
        column.addWidget(close)
        self.use_button.clicked.connect(self._use)
        self.download_button.clicked.connect(self._download)
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        self.add_button.clicked.connect(self._choose_folder)
        self.remove_button.clicked.connect(self._remove)
        self.convert_button.clicked.connect(lambda: self.convert_selected())
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _=None: self._use())
        self.refresh()

    def refresh(self) -> None:
        """The table; the loaded model's row (loaded_path) says "Loaded" in bold."""
        self.rows: list[dict] = []
        for entry in CATALOG:
            folder = downloaded_snapshot(entry.repo_id, self.cache_dir)
            cached = None if folder else cached_model(entry.repo_id, self.cache_dir)
            status = ("Downloaded" if folder else
                      f"Partly downloaded ({format_bytes(cached.size_bytes)})" if cached else
                      "Not downloaded")
            self.rows.append({"kind": "hub", "id": entry.repo_id, "folder": folder,
                              "cells": [entry.name, entry.backend, entry.size_text,
                                        entry.memory_text, status]})
        demo = bundled_demo_model()
        if demo is not None:
            # Always listed, so the demo is one click away after a switch to another model.
            self.rows.append({"kind": "demo", "id": str(demo), "folder": str(demo),
                              "cells": ["Demo model (bundled, 4.6 M parameters)", "MLX or torch",
                                        "–", "–", "Bundled with the app"]})
        for path in local.added_folders(self.store):
            if demo is not None and Path(path) == demo.resolve():
                continue
            try:
                model = local.validate_model_folder(path)
                cells = [f"{model.name} ({path})", model.description,
                         format_bytes(model.weight_bytes),
                         format_bytes(model_needs(model.path).needed_bytes), "Local folder"]
                folder = str(model.path)
            except CheckpointError as error:
                cells = [path, "–", "–", "–", f"Unusable: {error}"]
                folder = None
            self.rows.append({"kind": "local", "id": path, "folder": folder, "cells": cells})
        loaded = getattr(self, "loaded_path", None)
        for row in self.rows:
            row["loaded"] = bool(loaded and row["folder"] and _same_folder(row["folder"], loaded))
            if row["loaded"]:
                row["cells"][-1] = f"Loaded ✓ · {row['cells'][-1]}"
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, text in enumerate(row["cells"]):
                item = QTableWidgetItem(str(text))
                item.setToolTip(str(text))
                if row["loaded"]:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self._update_buttons()

    def selected(self) -> Optional[dict]:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows else None

    def select(self, key: str) -> None:
        for r, row in enumerate(self.rows):
            if row["id"] == key:
                self.table.selectRow(r)

    def _update_buttons(self) -> None:
        row = self.selected()
        self.use_button.setEnabled(bool(row and row["folder"]))
        self.download_button.setEnabled(bool(row and row["kind"] == "hub" and not row["folder"]))
        self.delete_button.setEnabled(bool(row and row["kind"] == "hub"
                                           and cached_model(row["id"], self.cache_dir)))
        self.remove_button.setEnabled(bool(row and row["kind"] == "local"))
        self.convert_button.setEnabled(bool(
            row and row["kind"] in ("hub", "local") and conversion.mlx_available()
            and not (self.convert_dialog is not None and self.convert_dialog.running)
            and conversion.is_convertible(row["folder"])))

    def _use(self) -> None:
        row = self.selected()
        if row and row["folder"]:
            self.use_requested.emit(str(row["folder"]))
            self.accept()

    def _download(self) -> None:
        row = self.selected()
        if row and row["kind"] == "hub":
            self.download_requested.emit(row["id"])

    def delete_selected(self, confirm: bool = True) -> int:
        row = self.selected()
        if not row or row["kind"] != "hub":
            return 0
        cached = cached_model(row["id"], self.cache_dir)
        if cached is None:
            return 0
        if confirm:
            answer = QMessageBox.question(
                self, "Delete model",
                f"Delete {row['id']} from the Hugging Face cache? This frees "
                f"{format_bytes(cached.size_bytes)}.")
            if answer != QMessageBox.StandardButton.Yes:
                return 0
        freed = delete_model(row["id"], self.cache_dir)
        self.status.setText(f"Deleted {row['id']}: {format_bytes(freed)} freed.")
        self.refresh()
        return freed

    def data_dir(self) -> Path:
        """The app's data folder: the one that holds the history database."""
        return Path(self.store.path).parent

    def convert_selected(self) -> Optional[ConvertDialog]:
        """Start converting the selected PyTorch checkpoint to MLX 8-bit; the finished folder is
        added to the list. Returns the progress dialog, None when nothing can be converted."""
        row = self.selected()
        if not row or not conversion.is_convertible(row["folder"]):
            return None
        name = row["id"].split("/")[-1] if row["kind"] == "hub" else Path(row["folder"]).name
        target = conversion.target_folder(self.data_dir(), name)
        if target.exists():
            self.status.setText(f"{target} already exists; it is added to the list.")
            self.add_folder(str(target))
            return None
        dialog = ConvertDialog(str(row["folder"]), str(target), row["cells"][0], self)
        dialog.converted.connect(self._converted)
        dialog.finished.connect(lambda _=None: self._update_buttons())
        self.convert_dialog = dialog
        dialog.show()
        dialog.start()
        self._update_buttons()
        return dialog

    def _converted(self, folder: str) -> None:
        if self.add_folder(folder):
            self.status.setText(f"Converted to MLX 8-bit: {folder}. Select it and press Use.")

    def add_folder(self, folder: str) -> bool:
        try:
            model = local.add_folder(self.store, folder)
        except CheckpointError as error:
            self.status.setText(f"Not added: {error}")
            return False
        self.status.setText(f"Added {model.path}.")
        self.refresh()
        self.select(str(model.path))
        return True

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a LLaDA model folder")
        if folder:
            self.add_folder(folder)

    def _remove(self) -> None:
        row = self.selected()
        if row and row["kind"] == "local":
            local.remove_folder(self.store, row["id"])
            self.refresh()


LARGE_DOWNLOAD_BYTES = 1_000_000_000    # at least this much to fetch: ask first
DISK_MARGIN_BYTES = 500_000_000          # left free after the download, for everything else


def download_box(parent: QWidget, name: str, needed: int, free: int) -> tuple[QMessageBox, bool]:
    """The question before a large download: its size and the free disk space; when the space
    is short, a polite refusal instead. Returns (box, whether it can go ahead)."""
    box = QMessageBox(parent)
    box.setObjectName("downloadQuestion")
    box.setWindowTitle("Download model — LLaDA Desktop")
    room = free >= needed + DISK_MARGIN_BYTES
    if room:
        box.setIcon(QMessageBox.Icon.Question)
        box.setText(f"Download {name}? It is {format_bytes(needed)}.")
        box.setInformativeText(f"This disk has {format_bytes(free)} free; "
                               f"{format_bytes(free - needed)} will be left. The download can be "
                               "cancelled and resumed later.")
        box.addButton("Download", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    else:
        box.setIcon(QMessageBox.Icon.Warning)
        box.setText(f"There is not enough disk space for {name}.")
        box.setInformativeText(f"It needs {format_bytes(needed)} and this disk has "
                               f"{format_bytes(free)} free. Free some space, or choose a smaller "
                               "(quantized) model in File ▸ Models….")
        box.addButton(QMessageBox.StandardButton.Ok)
    return box, room


def confirm_download(parent: QWidget, repo_id: str, cache_dir=None) -> bool:
    """Ask before a download of LARGE_DOWNLOAD_BYTES or more (what is still missing of a
    catalog model); smaller ones, and unknown repos whose size is not known yet, go ahead."""
    from app.models.download import free_space, hub_cache_dir

    entry = catalog_entry(repo_id)
    if entry is None:
        return True
    cached = cached_model(repo_id, cache_dir)
    needed = max(0, entry.size_bytes - (cached.size_bytes if cached else 0))
    if needed < LARGE_DOWNLOAD_BYTES:
        return True
    box, room = download_box(parent, entry.name, needed, free_space(hub_cache_dir(cache_dir)))
    box.exec()
    role = box.buttonRole(box.clickedButton()) if box.clickedButton() else None
    return room and role == QMessageBox.ButtonRole.AcceptRole
