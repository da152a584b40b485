"""A history folder that cannot be written is one sentence naming it, never a traceback.

These tests run as root here, and chmod does not stop root: a read-only folder or database is
made read-only for SQLite itself (the database opened with mode=ro, which SQLite enforces for
every user) or by a file standing where the folder should be. The chmod variants run only for
an ordinary user.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.history import store as store_module
from app.history.store import DB_NAME, SCHEMA_VERSION, Store, StoreError

ROOT = Path(__file__).resolve().parents[1]
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def read_only_sqlite(monkeypatch):
    """SQLite opens every database read-only, as it does a file it may not write."""
    real_connect = sqlite3.connect
    opened: list[str] = []

    def connect(database, *args, **kwargs):
        opened.append(str(database))
        return real_connect(f"file:{Path(database).as_posix()}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(store_module.sqlite3, "connect", connect)
    return opened


def assert_one_sentence(error: StoreError, folder: Path, reason: str) -> None:
    text = str(error)
    assert str(folder) in text and reason in text, text
    assert "\n" not in text and "Traceback" not in text
    assert "--data-dir" in text


def make_history(folder: Path) -> Path:
    store = Store.in_folder(folder)
    store.create_conversation("kept")
    store.close()
    return folder / DB_NAME


def test_a_file_where_the_folder_should_be(tmp_path):
    data = tmp_path / "data"
    data.write_text("not a folder")
    with pytest.raises(StoreError) as caught:
        Store.in_folder(data)
    assert_one_sentence(caught.value, data, "it is a file, not a folder")
    assert data.read_text() == "not a folder"
    with pytest.raises(StoreError) as caught:
        Store.in_folder(data / "deeper")
    assert_one_sentence(caught.value, data / "deeper", f"{data} is a file")


def test_a_folder_where_the_database_should_be(tmp_path):
    (tmp_path / DB_NAME).mkdir()
    with pytest.raises(StoreError) as caught:
        Store.in_folder(tmp_path)
    assert_one_sentence(caught.value, tmp_path, DB_NAME)


def test_a_read_only_folder_without_a_database(tmp_path, read_only_sqlite):
    # SQLite cannot create the file: the real SQLITE_CANTOPEN a read-only folder gives
    with pytest.raises(StoreError) as caught:
        Store.in_folder(tmp_path)
    assert_one_sentence(caught.value, tmp_path, "cannot be created or opened")
    assert read_only_sqlite == [str(tmp_path / DB_NAME)]
    assert not (tmp_path / DB_NAME).exists()


def test_a_folder_that_cannot_be_created(tmp_path, monkeypatch):
    target = tmp_path / "locked" / "data"

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(StoreError) as caught:
        Store.in_folder(target)
    assert_one_sentence(caught.value, target, "Permission denied")


@pytest.mark.parametrize("history", ["current", "needs-migration"])
def test_a_read_only_database_is_refused_not_moved_aside(tmp_path, monkeypatch, history):
    if history == "current":
        path = make_history(tmp_path)
    else:  # an empty database file: opening it would have to write the schema
        path = tmp_path / DB_NAME
        sqlite3.connect(path).close()
        path.write_bytes(b"")
    before = path.read_bytes()
    real_connect = sqlite3.connect
    monkeypatch.setattr(store_module.sqlite3, "connect", lambda database, *a, **k: real_connect(
        f"file:{Path(database).as_posix()}?mode=ro", *a, uri=True, **k))
    with pytest.raises(StoreError) as caught:
        Store.in_folder(tmp_path)
    assert_one_sentence(caught.value, tmp_path, f"{DB_NAME} is read-only")
    # a database we may not write is not a corrupt one: it stays where it is, unchanged
    assert not list(tmp_path.glob(DB_NAME + ".corrupt-*"))
    assert path.read_bytes() == before
    monkeypatch.undo()
    reopened = Store.in_folder(tmp_path)
    assert reopened.schema_version == SCHEMA_VERSION and reopened.notice is None
    if history == "current":
        assert [c.title for c in reopened.conversations()] == ["kept"]
    reopened.close()


def test_read_only_errors_are_not_taken_for_corruption():
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    notadb = sqlite3.DatabaseError("file is not a database")
    if sys.version_info >= (3, 11):
        readonly.sqlite_errorcode, notadb.sqlite_errorcode = 8, 26
    assert not store_module.is_corrupt(readonly)
    assert store_module.is_corrupt(notadb)
    assert store_module.is_corrupt(store_module._Corrupt("the integrity check failed"))


@pytest.mark.skipif(AS_ROOT or sys.platform == "win32", reason="chmod does not stop root")
def test_chmod_read_only_folder_and_database(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(StoreError, match="cannot be used"):
            Store.in_folder(folder)
    finally:
        folder.chmod(stat.S_IRWXU)
    path = make_history(tmp_path / "db")
    for name in (path, path.with_name(DB_NAME + "-wal"), path.with_name(DB_NAME + "-shm")):
        if name.exists():
            name.chmod(stat.S_IRUSR)
    try:
        with pytest.raises(StoreError, match="read-only"):
            Store.in_folder(tmp_path / "db")
    finally:
        for name in path.parent.iterdir():
            name.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_llada_app_prints_the_sentence_and_exits_2(tmp_path, capsys, read_only_sqlite):
    from app.cli import main

    assert main(["app", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("llada app: error: the history folder") and str(tmp_path) in err
    assert len(err.splitlines()) == 1


def test_llada_desktop_prints_the_sentence_and_exits_2(tmp_path):
    data = tmp_path / "data"
    data.write_text("a file")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "app", "--data-dir", str(data)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"llada-desktop: error: the history folder {data} cannot be used (it is a "
                     f"file, not a folder); choose another with --data-dir or $LLADA_DESKTOP_DATA"]
