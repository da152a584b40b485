"""Help ▸ About (what is running and where its files are) and Help ▸ Open Log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from PySide6.QtCore import QUrl, Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout

from app import __version__

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

log = logging.getLogger(__name__)


def about_facts(window: "MainWindow") -> list[tuple[str, str]]:
    """(name, value) rows: version, backend, dtype, model, data and log folders."""
    from app.session.logs import log_dir

    info = window.model_info or {}
    backend = info.get("backend") or window.backend_name or "chosen when a model loads"
    if info.get("device"):
        backend += f" ({info['device']})"
    model = (f"{window.identity.label} — {info['path']}" if window.identity is not None
             else "none loaded")
    return [("Version", __version__),
            ("Backend", backend),
            ("Weights", str(info.get("dtype") or "–")),
            ("Model", model),
            ("Data folder", str(Path(window.store.path).parent)),
            ("Log folder", str(log_dir()))]


class AboutDialog(QDialog):
    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.setObjectName("aboutDialog")
        self.setWindowTitle("About LLaDA Desktop")
        heading = QLabel("LLaDA Desktop")
        heading.setStyleSheet("font-size: 18px; font-weight: 600;")
        blurb = QLabel("A chat window for LLaDA, a language model that writes by diffusion: "
                       "every answer starts as masks and unmasks step by step.")
        blurb.setWordWrap(True)
        form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        for name, value in about_facts(window):
            label = QLabel(value)
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            form.addRow(name, label)
            self.values[name] = label
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.open_log_button = buttons.addButton("Open Log",
                                                 QDialogButtonBox.ButtonRole.ActionRole)
        self.open_log_button.clicked.connect(window.open_log)
        buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(heading)
        column.addWidget(blurb)
        column.addSpacing(6)
        column.addLayout(form)
        column.addWidget(buttons)
        self.setMinimumWidth(520)


def open_log(report: Callable[[str], object],
             opener: Optional[Callable[[QUrl], bool]] = None) -> bool:
    """Open the log file in the system's viewer; `report` gets one sentence when it cannot."""
    from app.session.logs import log_path

    path = log_path()
    if not path.is_file():
        report(f"There is no log file yet ({path}).")
        return False
    if not (opener or QDesktopServices.openUrl)(QUrl.fromLocalFile(str(path))):
        log.warning("the system could not open the log file %s", path)
        report(f"The log file could not be opened; it is {path}.")
        return False
    return True
