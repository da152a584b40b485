"""The history database changed under a running app: deleted or replaced, the next write notices,
says so in one sentence and writes everything it had (the open conversation included) to a fresh
database; a database locked by another program gives advice that fits."""

from __future__ import annotations

import os
import sqlite3

import pytest

from app.history.store import Store, StoreError


def filled_store(tmp_path):
    store = Store(tmp_path / "history.sqlite3")
    notices = []
    store.on_notice = notices.append
    conversation = store.create_conversation("Open chat")
    store.add_message(conversation, "user", "first")
    store.add_message(conversation, "assistant", "an answer", trace=b"trace")
    return store, conversation, notices


def test_a_deleted_database_is_written_afresh(tmp_path):
    store, conversation, notices = filled_store(tmp_path)
    os.remove(store.path)
    store.add_message(conversation, "user", "after the delete")
    assert len(notices) == 1 and "deleted while the app was running" in notices[0]
    assert "\n" not in notices[0]
    reopened = Store(store.path)
    texts = [m.text for m in reopened.messages(conversation)]
    assert texts == ["first", "an answer", "after the delete"]
    assert reopened.trace_blob(reopened.messages(conversation)[1].id) == b"trace"
    # Later writes go to the fresh file, without another notice.
    store.add_message(conversation, "assistant", "and more")
    assert len(notices) == 1
    assert [m.text for m in Store(store.path).messages(conversation)][-1] == "and more"


def test_a_replaced_database_is_moved_aside_never_lost(tmp_path):
    store, conversation, notices = filled_store(tmp_path)
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE someone_elses (x)")
    os.replace(other, store.path)
    store.create_conversation("second")
    assert len(notices) == 1 and "replaced" in notices[0]
    aside = [p for p in tmp_path.iterdir() if ".replaced-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].name in notices[0]
    with sqlite3.connect(aside[0]) as db:  # the replacement kept as it was
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("someone_elses",)]
    titles = {c.title for c in Store(store.path).conversations()}
    assert titles == {"Open chat", "second"}


def test_a_locked_database_says_another_copy_may_be_running(tmp_path, monkeypatch):
    path = tmp_path / "history.sqlite3"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(Store, "busy_timeout_s", 0.1)
    try:
        with pytest.raises(StoreError) as error:
            Store(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "another copy of LLaDA Desktop" in str(error.value)


def test_a_write_blocked_by_a_lock_is_advice_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setattr(Store, "busy_timeout_s", 0.1)
    store = Store(tmp_path / "history.sqlite3")
    conversation = store.create_conversation("chat")
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        with pytest.raises(StoreError) as error:
            store.add_message(conversation, "user", "hi")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "another copy of LLaDA Desktop" in str(error.value)
    store.add_message(conversation, "user", "hi")  # once the lock is gone, writes work again
    assert [m.text for m in store.messages(conversation)] == ["hi"]
