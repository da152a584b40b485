"""Export and import from the window: file dialogs around app.history.export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

EXPORT_FILTERS = "Markdown (*.md);;JSON (*.json);;HTML (*.html);;PDF (*.pdf)"


def safe_file_name(title: str) -> str:
    safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in title)
    return safe.strip() or "conversation"


def choose_export(window: "MainWindow") -> None:
    if window.current_id is None:
        return
    conversation = window.store.conversation(window.current_id)
    path, chosen = QFileDialog.getSaveFileName(window, "Export conversation",
                                               f"{safe_file_name(conversation.title)}.md",
                                               EXPORT_FILTERS)
    if not path:
        return
    fmt = Path(path).suffix.lstrip(".") or chosen.split("(*.")[-1].rstrip(")")
    if not Path(path).suffix:
        path = f"{path}.{fmt}"
    try:
        written = window.export_conversation(path, fmt)
    except (OSError, ValueError) as error:
        window.banner.show_message(f"Could not export: {error}")
        return
    window.status.setText(f"Exported to {written}")


def choose_import(window: "MainWindow") -> None:
    path, _ = QFileDialog.getOpenFileName(window, "Import conversation", "", "JSON (*.json)")
    if not path:
        return
    try:
        window.import_conversation(path)
    except (OSError, ValueError) as error:
        window.banner.show_message(f"Could not import {Path(path).name}: {error}")
