"""Conversation history: one SQLite database (stdlib sqlite3, WAL) with a versioned schema.

Each message is written in its own transaction when it is complete, so a crash or a kill loses
at most the answer being generated. A database file that SQLite cannot read is moved aside
(renamed with a timestamp), never deleted, and a fresh one takes its place.

Multi-turn prompts: every assistant message stores the prompt ids it was generated from and,
in its stats, the model and tokenizer fingerprint that wrote it; its answer ids are the final
tokens of its trace. How the next prompt is built from them (continued by ids, or re-encoded
from text with encode_prompt) is app.session.conversation's job.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from app.session.pictures import Picture

log = logging.getLogger(__name__)

ENV_DATA_DIR = "LLADA_DESKTOP_DATA"
DB_NAME = "history.sqlite3"

MIGRATIONS = [
    # version 1
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        text TEXT NOT NULL,
        created REAL NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        stats TEXT NOT NULL DEFAULT '{}',
        prompt_ids TEXT
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    CREATE TABLE traces (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        data BLOB NOT NULL
    );
    """,
    # version 2: small app preferences (e.g. the last model that loaded)
    """
    CREATE TABLE preferences (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # version 3: a question's picture (LLaDA-V), kept with it
    """
    CREATE TABLE pictures (
        message_id INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        data BLOB NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def default_data_dir() -> Path:
    """$LLADA_DESKTOP_DATA if set, else the platform's app-data folder."""
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR])
    from platformdirs import user_data_dir

    return Path(user_data_dir("LLaDA Desktop", appauthor=False))


@dataclass
class Conversation:
    id: int
    title: str
    created: float
    updated: float
    settings: dict = field(default_factory=dict)


@dataclass
class Message:
    id: int
    conversation_id: int
    role: str
    text: str
    created: float
    settings: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    prompt_ids: Optional[list[int]] = None
    has_trace: bool = False
    has_picture: bool = False


class StoreError(RuntimeError):
    """The history cannot be opened; the message is one sentence for the user."""


# SQLite result codes (the low byte of an extended code) that mean the file's content is bad,
# as opposed to a file or folder we may not write.
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26
CORRUPT_MESSAGES = ("file is not a database", "malformed", "integrity check failed")


class _Corrupt(sqlite3.DatabaseError):
    """Our own integrity check failed."""


def is_corrupt(error: sqlite3.Error) -> bool:
    """A database file SQLite cannot read (moved aside), not one it may not write (refused)."""
    if isinstance(error, _Corrupt):
        return True
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    return any(text in str(error) for text in CORRUPT_MESSAGES)


def unusable_folder(folder: Path, reason: str) -> StoreError:
    return StoreError(f"the history folder {folder} cannot be used ({reason}); choose another "
                      f"with --data-dir or ${ENV_DATA_DIR}")


class Store:
    """The history database. `notice` holds a sentence for the user if the file was moved aside.

    A folder or database that cannot be written raises StoreError naming the folder.
    """

    busy_timeout_s = 10.0  # how long a write waits for another connection's lock

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.notice: Optional[str] = None
        # Called with a sentence when the file is found deleted or replaced while open (the
        # window shows it); `notice` holds it too.
        self.on_notice: Optional[Callable[[str], None]] = None
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise unusable_folder(folder, _folder_problem(folder, error)) from error
        try:
            try:
                self.db = self._open()
            except sqlite3.DatabaseError as error:
                if not is_corrupt(error):
                    raise
                moved = self._move_aside()
                self.notice = (f"The history database could not be read ({error}); it was moved "
                               f"to {moved.name} and a new, empty history was started.")
                self.db = self._open()
        except sqlite3.Error as error:
            raise unusable_folder(folder, _database_problem(error)) from error
        except OSError as error:  # moving a corrupt file aside
            raise unusable_folder(folder, error.strerror or str(error)) from error
        self._identity = _file_identity(self.path)

    @classmethod
    def in_folder(cls, folder: str | Path | None = None) -> "Store":
        folder = Path(folder).expanduser() if folder else default_data_dir()
        return cls(folder / DB_NAME)

    # --- opening ---------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=self.busy_timeout_s, check_same_thread=True,
                             factory=_Connection)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise _Corrupt("the integrity check failed")
            self._migrate(db)
            self._check_writable(db)
        except (sqlite3.Error, StoreError):
            db.close()
            raise
        return db

    @staticmethod
    def _check_writable(db: sqlite3.Connection) -> None:
        """Fail now, not at the first message, when SQLite opened the file read-only: a write
        statement is refused (SQLITE_READONLY) even when it would change no row."""
        try:
            db.execute("UPDATE preferences SET key = key WHERE 0")
        finally:
            db.rollback()

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"the history database {self.path} is from a newer version of "
                             f"LLaDA Desktop (schema {version})")
        for number in range(version, SCHEMA_VERSION):
            with db:
                db.executescript("BEGIN;" + MIGRATIONS[number]
                                 + f"; PRAGMA user_version = {number + 1}; COMMIT;")

    def _move_aside(self, kind: str = "corrupt", side_files: bool = True) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.{kind}-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.{kind}-{stamp}-{n}")
            n += 1
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm") if side_files else ():
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        return target

    def close(self) -> None:
        self.db.close()

    # --- the file under us -----------------------------------------------------------------
    def _check_file(self) -> None:
        """Before a write: if the database file was deleted or replaced while open, SQLite would
        keep writing to the unlinked file and every later message would vanish. Instead, copy
        everything this connection still sees (the open conversation included) into a fresh
        database at the same path (a replacement is moved aside, never deleted) and say so."""
        if _file_identity(self.path) == self._identity:
            return
        replaced = self.path.exists()
        log.warning("the history database %s was %s while open; writing a fresh one", self.path,
                    "replaced" if replaced else "deleted")
        moved = None
        if replaced:  # the side files are ours (the old file's), not the replacement's
            moved = self._move_aside(kind="replaced", side_files=False)
        for suffix in ("-wal", "-shm"):  # this connection keeps them open; no file needs them now
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.unlink()
        try:
            fresh = sqlite3.connect(str(self.path), timeout=10, check_same_thread=True)
            self.db.backup(fresh)
            fresh.close()
            old, self.db = self.db, self._open()
            old.close()
        except sqlite3.Error as error:
            raise StoreError(f"the history database {self.path} was "
                             f"{'replaced' if replaced else 'deleted'} while the app ran, and "
                             f"a new one could not be written ({_database_problem(error)})") from error
        self._identity = _file_identity(self.path)
        self.notice = (f"The history database was {'replaced' if replaced else 'deleted'} while "
                       f"the app was running; everything open here was written to a fresh one at "
                       f"{self.path}" + (f" (the other file is now {moved.name})." if moved else "."))
        if self.on_notice is not None:
            self.on_notice(self.notice)

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # --- preferences ---------------------------------------------------------------------
    def preference(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM preferences WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_preference(self, key: str, value: Any) -> None:
        with self.db:
            self.db.execute("INSERT INTO preferences (key, value) VALUES (?, ?) "
                            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            (key, json.dumps(value)))

    # --- conversations ---------------------------------------------------------------------
    def create_conversation(self, title: str = "New chat", settings: dict | None = None) -> int:
        self._check_file()
        now = time.time()
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO conversations (title, created, updated, settings) VALUES (?,?,?,?)",
                (title, now, now, json.dumps(settings or {})))
        return int(cursor.lastrowid)

    def conversations(self, search: str = "") -> list[Conversation]:
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = "%" + escaped + "%"
            rows = self.db.execute(
                "SELECT * FROM conversations c WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS "
                "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.text LIKE ? "
                "ESCAPE '\\') ORDER BY updated DESC, id DESC", (like, like)).fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM conversations ORDER BY updated DESC, id DESC").fetchall()
        return [self._conversation(r) for r in rows]

    def conversation(self, conversation_id: int) -> Optional[Conversation]:
        row = self.db.execute("SELECT * FROM conversations WHERE id = ?",
                              (conversation_id,)).fetchone()
        return self._conversation(row) if row else None

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        with self.db:
            self.db.execute("UPDATE conversations SET title = ? WHERE id = ?",
                            (title, conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        with self.db:
            self.db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def set_conversation_settings(self, conversation_id: int, settings: dict) -> None:
        with self.db:
            self.db.execute("UPDATE conversations SET settings = ? WHERE id = ?",
                            (json.dumps(settings), conversation_id))

    @staticmethod
    def _conversation(row: sqlite3.Row) -> Conversation:
        return Conversation(id=row["id"], title=row["title"], created=row["created"],
                            updated=row["updated"], settings=json.loads(row["settings"] or "{}"))

    # --- messages --------------------------------------------------------------------------
    def add_message(self, conversation_id: int, role: str, text: str, *,
                    settings: dict | None = None, stats: dict | None = None,
                    prompt_ids: list[int] | None = None, trace: bytes | None = None,
                    created: float | None = None, replaces: int | None = None,
                    picture: Picture | None = None) -> int:
        """Write one complete message (and its trace) in a single transaction; `replaces` is a
        message deleted in the same transaction (a regenerated answer takes the old one's place
        only once it is stored)."""
        self._check_file()
        with self.db:
            if replaces is not None:
                self.db.execute("DELETE FROM messages WHERE id = ?", (replaces,))
            return self._insert_message(conversation_id, role, text, settings=settings,
                                        stats=stats, prompt_ids=prompt_ids, trace=trace,
                                        created=created, picture=picture)

    def _insert_message(self, conversation_id: int, role: str, text: str, *,
                        settings: dict | None = None, stats: dict | None = None,
                        prompt_ids: list[int] | None = None, trace: bytes | None = None,
                        created: float | None = None, picture: Picture | None = None) -> int:
        now = time.time() if created is None else created
        cursor = self.db.execute(
            "INSERT INTO messages (conversation_id, role, text, created, settings, stats, "
            "prompt_ids) VALUES (?,?,?,?,?,?,?)",
            (conversation_id, role, text, now, json.dumps(settings or {}),
             json.dumps(stats or {}),
             None if prompt_ids is None else json.dumps([int(t) for t in prompt_ids])))
        message_id = int(cursor.lastrowid)
        if trace is not None:
            self.db.execute("INSERT INTO traces (message_id, data) VALUES (?, ?)",
                            (message_id, trace))
        if picture is not None:
            self.db.execute("INSERT INTO pictures (message_id, name, data) VALUES (?, ?, ?)",
                            (message_id, picture.name, picture.data))
        self.db.execute("UPDATE conversations SET updated = ? WHERE id = ?",
                        (time.time(), conversation_id))
        return message_id

    def import_conversation(self, title: str, settings: dict, messages: list[dict]) -> int:
        """Add a whole conversation in one transaction: all of it or, on any error, nothing.
        Each message is a dict of add_message's arguments (role, text, settings, ...)."""
        self._check_file()
        with self.db:
            now = time.time()
            cursor = self.db.execute(
                "INSERT INTO conversations (title, created, updated, settings) VALUES (?,?,?,?)",
                (title, now, now, json.dumps(settings or {})))
            conversation_id = int(cursor.lastrowid)
            for message in messages:
                self._insert_message(conversation_id, **message)
        return conversation_id

    def messages(self, conversation_id: int) -> list[Message]:
        rows = self.db.execute(
            f"SELECT m.*, {_FLAGS} FROM messages m WHERE conversation_id = ? ORDER BY id",
            (conversation_id,)).fetchall()
        return [self._message(r) for r in rows]

    def message(self, message_id: int) -> Optional[Message]:
        row = self.db.execute(
            f"SELECT m.*, {_FLAGS} FROM messages m WHERE id = ?", (message_id,)).fetchone()
        return self._message(row) if row else None

    def delete_message(self, message_id: int) -> None:
        with self.db:
            self.db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def trace_blob(self, message_id: int) -> Optional[bytes]:
        row = self.db.execute("SELECT data FROM traces WHERE message_id = ?",
                              (message_id,)).fetchone()
        return bytes(row[0]) if row else None

    def picture(self, message_id: int) -> Optional[Picture]:
        """The picture a question was asked about, or None."""
        row = self.db.execute("SELECT name, data FROM pictures WHERE message_id = ?",
                              (message_id,)).fetchone()
        return Picture(name=row[0], data=bytes(row[1])) if row else None

    @staticmethod
    def _message(row: sqlite3.Row) -> Message:
        ids = row["prompt_ids"]
        return Message(id=row["id"], conversation_id=row["conversation_id"], role=row["role"],
                       text=row["text"], created=row["created"],
                       settings=json.loads(row["settings"] or "{}"),
                       stats=json.loads(row["stats"] or "{}"),
                       prompt_ids=json.loads(ids) if ids else None,
                       has_trace=bool(row["has_trace"]), has_picture=bool(row["has_picture"]))


_FLAGS = ("EXISTS (SELECT 1 FROM traces t WHERE t.message_id = m.id) AS has_trace, "
          "EXISTS (SELECT 1 FROM pictures p WHERE p.message_id = m.id) AS has_picture")


def _folder_problem(folder: Path, error: OSError) -> str:
    """Why the folder cannot be made, in a few words."""
    for path in [folder, *folder.parents]:
        if path.exists() and not path.is_dir():
            return "it is a file, not a folder" if path == folder else f"{path} is a file"
    return error.strerror or str(error)


class _Connection(sqlite3.Connection):
    """A connection whose transactions (`with db:`) turn a lock held too long by another
    program into a StoreError with advice that fits, after rolling back."""

    def __exit__(self, kind: Any, error: Any, trace: Any) -> Any:
        result = super().__exit__(kind, error, trace)
        if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
            raise StoreError(f"the history could not be saved: {_database_problem(error)}") from error
        return result


def _file_identity(path: Path) -> Optional[tuple[int, int]]:
    """(device, inode) of the database file, None when it is gone."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _database_problem(error: sqlite3.Error) -> str:
    code = getattr(error, "sqlite_errorname", None)
    if code and code.startswith("SQLITE_BUSY") or "database is locked" in str(error):
        return (f"{DB_NAME} is locked by another program; is another copy of LLaDA Desktop "
                "running? Close it and try again")
    if code and code.startswith("SQLITE_READONLY") or "readonly" in str(error):
        return f"{DB_NAME} is read-only"
    if code and code.startswith("SQLITE_CANTOPEN") or "unable to open" in str(error):
        return f"{DB_NAME} cannot be created or opened there"
    return f"{DB_NAME}: {error}"
