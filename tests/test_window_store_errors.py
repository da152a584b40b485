"""The history refuses a write (locked by another copy of the app, or unusable): the window says
so in one sentence and loses nothing the user typed or the model wrote."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication

from app.history.store import StoreError
from window_support import Windows, collect_earlier_windows  # noqa: F401

LOCKED = "The history is locked: another copy of LLaDA Desktop may be running."
SETTINGS = {"gen_length": 8, "block_length": 8, "steps": 8, "mode": "exact"}


@pytest.fixture
def window(qtbot, tmp_path, tiny_checkpoint):
    windows = Windows(qtbot, tmp_path / "data")
    yield windows.open(str(tiny_checkpoint), settings=SETTINGS)
    windows.close_all()


def refuse_writes_of(store, monkeypatch, role):
    original = store.add_message

    def add_message(conversation_id, message_role, *args, **kwargs):
        if message_role == role:
            raise StoreError(LOCKED)
        return original(conversation_id, message_role, *args, **kwargs)

    monkeypatch.setattr(store, "add_message", add_message)


def test_a_question_the_history_refuses_stays_in_the_composer(window, monkeypatch):
    refuse_writes_of(window.store, monkeypatch, "user")
    window.composer.setPlainText("Hello there")
    assert window.send() is False
    assert not window.generating
    assert window.composer.toPlainText() == "Hello there"
    assert window.banner.text().startswith(LOCKED)
    assert "not sent" in window.banner.text()


def test_an_answer_the_history_refuses_goes_to_the_clipboard(window, qtbot, monkeypatch):
    refuse_writes_of(window.store, monkeypatch, "assistant")
    window.composer.setPlainText("Hello there")
    assert window.send() is True
    qtbot.waitUntil(lambda: not window.generating, timeout=60_000)
    assert window.banner.text().startswith(LOCKED)
    assert "clipboard" in window.banner.text()
    assert QGuiApplication.clipboard().text() != ""
    assert window.status.text() == "The answer was not saved."
