"""The window's menus and shortcuts (⌘ instead of Ctrl on macOS, through Qt's standard keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


def shortcut(standard: QKeySequence.StandardKey, fallback: str) -> list[QKeySequence]:
    """The platform's standard key for an action, with `fallback` where the platform has none."""
    keys = QKeySequence.keyBindings(standard)
    fallback_key = QKeySequence(fallback)
    if not any(k == fallback_key for k in keys):
        keys = list(keys) + [fallback_key]
    return keys


def build_menus(window: "MainWindow") -> None:
    """File, Chat, View and Help menus; each action is also set on `window`
    (window.new_action, ...)."""
    K = QKeySequence.StandardKey
    file_menu = window.menuBar().addMenu("&File")
    chat_menu = window.menuBar().addMenu("&Chat")
    view_menu = window.menuBar().addMenu("&View")
    help_menu = window.menuBar().addMenu("&Help")

    def action(menu, text: str, slot: Callable[[], object], keys=None) -> QAction:
        act = QAction(text, window)
        if keys:
            act.setShortcuts(keys)
        act.triggered.connect(lambda checked=False: slot())
        menu.addAction(act)
        window.addAction(act)
        return act

    w = window
    w.new_action = action(file_menu, "New chat", w.new_conversation, shortcut(K.New, "Ctrl+N"))
    w.open_model_action = action(file_menu, "Open model folder…", w.choose_model,
                                 shortcut(K.Open, "Ctrl+O"))
    w.models_action = action(file_menu, "Models…", w.show_model_manager,
                             [QKeySequence("Ctrl+Shift+M")])
    w.import_action = action(file_menu, "Import conversation (JSON)…", w.choose_import)
    w.export_action = action(file_menu, "Export conversation…", w.choose_export,
                             [QKeySequence("Ctrl+E")])
    file_menu.addSeparator()
    w.quit_action = action(file_menu, "Quit", w.close, shortcut(K.Quit, "Ctrl+Q"))
    w.stop_action = action(chat_menu, "Stop", w.stop, [QKeySequence(Qt.Key.Key_Escape)])
    w.regenerate_action = action(chat_menu, "Regenerate last answer", w.regenerate,
                                 [QKeySequence("Ctrl+R")])
    w.copy_action = action(chat_menu, "Copy last answer", w.copy_last_answer)
    w.settings_action = action(view_menu, "Settings", w.show_settings,
                               shortcut(K.Preferences, "Ctrl+,"))
    w.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
    w.inspector_action = w.inspector_dock.toggleViewAction()
    w.inspector_action.setText("Inspector")
    w.inspector_action.setToolTip("The detailed canvas: colour modes, legend, per-step details")
    w.inspector_action.setShortcut(QKeySequence("Ctrl+I"))
    view_menu.addAction(w.inspector_action)
    window.addAction(w.inspector_action)
    view_menu.addSeparator()
    # One tick among the colour modes; it follows the mode however it was changed.
    w.colour_actions = {}
    group = QActionGroup(window)
    group.setExclusive(True)
    for key, label in (("state", "Colour by state"), ("confidence", "Colour by confidence"),
                       ("reveal", "Colour by reveal order")):
        act = action(view_menu, label, lambda k=key: w.set_colour_mode(k))
        act.setCheckable(True)
        act.setChecked(key == w.colour_mode)
        group.addAction(act)
        w.colour_actions[key] = act
    w.about_action = action(help_menu, "About LLaDA Desktop", w.show_about)
    w.about_action.setMenuRole(QAction.MenuRole.AboutRole)
    w.open_log_action = action(help_menu, "Open Log", w.open_log)
    w.open_log_action.setToolTip("Open the log file (what went wrong, with details)")
