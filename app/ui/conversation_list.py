"""The conversation list: search, new, rename, delete."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QLineEdit, QListWidget, QListWidgetItem, QMenu, QPushButton, QVBoxLayout, QWidget,
)

from app.history.store import Conversation


class ConversationList(QWidget):
    selected = Signal(int)
    new_requested = Signal()
    rename_requested = Signal(int)
    delete_requested = Signal(int)
    search_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.new_button = QPushButton("New chat")
        self.rename_button = QPushButton("Rename")
        self.delete_button = QPushButton("Delete")
        buttons = QHBoxLayout()
        buttons.addWidget(self.rename_button)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.new_button.clicked.connect(self.new_requested)
        self.rename_button.clicked.connect(self._rename_current)
        self.delete_button.clicked.connect(self._delete_current)
        self.search.textChanged.connect(self.search_changed)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.customContextMenuRequested.connect(self._menu)
        self._filling = False

    def populate(self, conversations: list[Conversation], current: Optional[int]) -> None:
        self._filling = True
        self.list.clear()
        for conversation in conversations:
            item = QListWidgetItem(conversation.title)
            item.setData(Qt.ItemDataRole.UserRole, conversation.id)
            item.setToolTip(conversation.title)
            self.list.addItem(item)
            if conversation.id == current:
                self.list.setCurrentItem(item)
        self._filling = False

    def current_id(self) -> Optional[int]:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def ids(self) -> list[int]:
        return [int(self.list.item(i).data(Qt.ItemDataRole.UserRole))
                for i in range(self.list.count())]

    def _current_changed(self, item, _previous) -> None:
        if not self._filling and item is not None:
            self.selected.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _rename_current(self) -> None:
        if self.current_id() is not None:
            self.rename_requested.emit(self.current_id())

    def _delete_current(self) -> None:
        if self.current_id() is not None:
            self.delete_requested.emit(self.current_id())

    def _menu(self, point) -> None:
        item = self.list.itemAt(point)
        if item is None:
            return
        conversation_id = int(item.data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.rename_requested.emit(conversation_id))
        menu.addAction("Delete…", lambda: self.delete_requested.emit(conversation_id))
        menu.exec(self.list.mapToGlobal(point))
