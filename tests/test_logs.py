"""The log file: every command writes it, and a failure leaves its traceback there."""

from __future__ import annotations

import logging

import pytest

from app import cli
from app.session.logs import log_path, setup_logging


@pytest.fixture
def log_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LLADA_LOG_DIR", str(tmp_path / "logs"))
    yield tmp_path / "logs"
    setup_logging()  # back to the session's folder


def test_an_unexpected_failure_leaves_its_traceback_in_the_log(log_folder, monkeypatch):
    def explode(args):
        raise RuntimeError("the forced failure")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["generate"].set_defaults(run=explode)
    with pytest.raises(RuntimeError):
        cli.main(["generate", "--prompt", "hi"])
    text = (log_folder / "llada.log").read_text()
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: the forced failure" in text
    assert log_path() == log_folder / "llada.log"


def test_a_user_error_is_one_sentence_on_stderr_and_logged(log_folder, capsys, tmp_path):
    missing = tmp_path / "no-such-model"
    assert cli.main(["generate", "--model", str(missing), "--prompt", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    assert "llada generate" in (log_folder / "llada.log").read_text()


def test_log_level_is_accepted_before_and_after_the_command(log_folder):
    parser = cli.build_parser()
    assert parser.parse_args(["--log-level", "debug", "chat"]).log_level == "debug"
    assert parser.parse_args(["chat", "--log-level", "ERROR"]).log_level == "error"
    assert parser.parse_args(["chat"]).log_level == "info"
    setup_logging("debug")
    assert logging.getLogger().level == logging.DEBUG


def test_an_unusable_log_folder_is_one_line_and_logging_goes_on(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LLADA_LOG_DIR", str(blocker / "logs"))
    try:
        assert setup_logging() is None
        assert capsys.readouterr().err.count("\n") == 1
        logging.getLogger("x").warning("still fine")
    finally:
        monkeypatch.undo()
        setup_logging()
    # the file works again: no terminal handler is left behind (it would write to this test's
    # captured stream, closed once the test ends)
    assert not [h for h in logging.getLogger().handlers if h.get_name() == "llada-stderr"]


def test_the_terminal_fallback_writes_to_the_current_stderr(tmp_path, monkeypatch, capsys):
    import io
    import sys

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LLADA_LOG_DIR", str(blocker / "logs"))
    try:
        setup_logging()
        capsys.readouterr()
        replaced = io.StringIO()
        monkeypatch.setattr(sys, "stderr", replaced)
        logging.getLogger("x").warning("to the stream of now")
        assert "to the stream of now" in replaced.getvalue()
    finally:
        monkeypatch.undo()
        setup_logging()
