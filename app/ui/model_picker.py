"""The toolbar's model picker: the loaded model's name, and a menu of the models that are here
(downloaded, bundled, added folders) with a tick on the loaded one, the known models still to
download (each asks first, see models_ui.confirm_download), Models… and Open folder….
Picking one switches through the window's usual path (folder check, fit check, load)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu, QToolBar, QToolButton

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


def models_here(window: "MainWindow") -> list[tuple[str, str]]:
    """(name, folder) of every model that can be loaded without a download, the loaded one
    included even when it is in none of the lists (a folder given on the command line)."""
    from app.models import local
    from app.models.catalog import CATALOG, bundled_demo_model
    from app.models.download import downloaded_snapshot

    found: list[tuple[str, str]] = []
    for entry in CATALOG:
        folder = downloaded_snapshot(entry.repo_id, window.hub_cache_dir)
        if folder is not None:
            found.append((entry.name, str(folder)))
    demo = bundled_demo_model()
    if demo is not None:
        found.append(("Demo model (bundled)", str(demo)))
    for folder in local.added_folders(window.store):
        if Path(folder, "config.json").is_file():
            found.append((Path(folder).name, folder))
    unique: list[tuple[str, str]] = []
    for name, folder in found:
        if not any(same_folder(folder, seen) for _, seen in unique):
            unique.append((name, folder))
    loaded = window.model_path if window.model_info is not None else None
    if loaded and Path(loaded).is_dir() and not any(same_folder(loaded, f) for _, f in unique):
        unique.append((window.identity.label if window.identity else Path(loaded).name, loaded))
    return unique


def models_to_download(window: "MainWindow") -> list:
    """The catalog's models that are not (fully) here yet, the recommended one first."""
    from app.models.catalog import CATALOG, recommended_entry
    from app.models.download import downloaded_snapshot

    recommended = recommended_entry()
    entries = [recommended] + [e for e in CATALOG if e.repo_id != recommended.repo_id]
    return [e for e in entries if downloaded_snapshot(e.repo_id, window.hub_cache_dir) is None]


def same_folder(a: Optional[str], b: Optional[str]) -> bool:
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


class ModelPicker(QToolButton):
    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.window = window
        self.setObjectName("modelPicker")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.picker_menu = QMenu(self)
        self.picker_menu.setObjectName("modelMenu")
        self.picker_menu.aboutToShow.connect(self.fill_menu)
        self.setMenu(self.picker_menu)
        self.show_state()

    def show_state(self) -> None:
        """The button's text: the loaded model, the one loading, or none."""
        window = self.window
        models = getattr(window, "models", None)
        if models is not None and models.loading:
            self.setText(f"Loading {Path(models.path or '').name or 'model'}…")
            self.setToolTip(models.path or "")
        elif window.identity is not None:
            self.setText(window.identity.label)
            self.setToolTip(f"{window.model_path}\nClick to switch models")
        else:
            self.setText("No model")
            self.setToolTip("Choose a model")

    def fill_menu(self) -> None:
        window = self.window
        menu = self.picker_menu
        menu.clear()
        loaded = window.model_path if window.model_info is not None else None
        models = models_here(window)
        if not models:
            empty = menu.addAction("No models on this computer yet")
            empty.setEnabled(False)
        for name, folder in models:
            action = menu.addAction(name, lambda f=folder: self.pick(f))
            action.setCheckable(True)
            action.setChecked(same_folder(folder, loaded))
            action.setToolTip(folder)
        menu.addSeparator()
        self.download_menu = menu.addMenu("Download")
        for entry in models_to_download(window):
            self.download_menu.addAction(
                f"{entry.name} — {entry.size_text}…",
                lambda repo=entry.repo_id: window.download_model(repo))
        self.download_menu.menuAction().setVisible(not self.download_menu.isEmpty())
        menu.addAction("Models…", window.show_model_manager)
        menu.addAction("Open model folder…", window.choose_model)

    def pick(self, folder: str) -> None:
        window = self.window
        if window.model_info is not None and same_folder(folder, window.model_path):
            return                      # already the loaded one
        if window.generating:
            window.status.setText("Stop the answer first, then switch models.")
            return
        window.request_model(folder)


def build_toolbar(window: "MainWindow") -> ModelPicker:
    toolbar = QToolBar("Model", window)
    toolbar.setObjectName("modelToolbar")
    toolbar.setMovable(False)
    toolbar.setFloatable(False)
    picker = ModelPicker(window)
    toolbar.addWidget(picker)
    window.addToolBar(toolbar)
    window.toolbar = toolbar
    return picker
