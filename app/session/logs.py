"""The app's log: stdlib logging into a rotating file in the platform's log folder.

Every front end calls `setup_logging` once at start; modules log through
`logging.getLogger(__name__)`. A failure the user sees as one sentence is logged here with its
traceback, so "it failed" always leaves something to read. `$LLADA_LOG_DIR` moves the folder
(tests point it at a temporary one).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Optional

APP_NAME = "LLaDA Desktop"
LOG_FILE_NAME = "llada.log"
LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LEVEL = "info"
MAX_BYTES = 2 * 1024 * 1024
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"

_HANDLER_NAME = "llada-file"


def log_dir() -> Path:
    """Where the log file lives: $LLADA_LOG_DIR, else the platform's user log folder."""
    override = os.environ.get("LLADA_LOG_DIR")
    if override:
        return Path(override)
    from platformdirs import user_log_dir

    return Path(user_log_dir(APP_NAME, appauthor=False))


def log_path() -> Path:
    return log_dir() / LOG_FILE_NAME


_STDERR_NAME = "llada-stderr"


def setup_logging(level: str = DEFAULT_LEVEL) -> Optional[Path]:
    """Send the root logger to the rotating log file; returns its path, or None when the folder
    cannot be used (then one line goes to stderr and logging stays on stderr only).

    Calling it again changes the level and, if the folder moved, the file.
    """
    if level.lower() not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    root.setLevel(level.upper())
    path = log_path()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            if Path(getattr(handler, "baseFilename", "")) == path.resolve():
                return path
            root.removeHandler(handler)
            handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=False)
    except OSError as error:
        print(f"llada: cannot write the log in {path.parent}: {error.strerror or error}; "
              "logging to the terminal only", file=sys.stderr)
        _stderr_fallback(root)
        return None
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    for fallback in [h for h in root.handlers if h.get_name() == _STDERR_NAME]:
        root.removeHandler(fallback)  # the file works again: the terminal fallback goes
    _quiet_chatty_libraries()
    return path


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (a test, or an embedding app, may
    have replaced the stream it was made with)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _stderr_fallback(root: logging.Logger) -> None:
    if not any(h.get_name() == _STDERR_NAME for h in root.handlers):
        handler = _CurrentStderr()
        handler.set_name(_STDERR_NAME)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)


def _quiet_chatty_libraries() -> None:
    for name in ("urllib3", "httpx", "httpcore", "filelock", "PIL", "asyncio", "fsspec"):
        logging.getLogger(name).setLevel(logging.WARNING)
