"""Headless commands never import Qt: every subcommand's help but the window's, and a real
`llada generate` and a piped `llada chat` on the bundled demo model, checked by the import guard
(tests/torch_guard/sitecustomize.py, LLADA_QT_GUARD) at the subprocess' exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from import_guard import run_guarded

DEMO = Path(__file__).resolve().parents[1] / "app" / "resources" / "llada-demo"
WINDOW_COMMANDS = {"app"}  # the only subcommand that opens a window


def headless_commands() -> list[str]:
    from app.cli import build_parser

    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.choices and
                      "generate" in action.choices)
    return sorted(set(subparsers.choices) - WINDOW_COMMANDS)


def test_the_guard_sees_a_qt_import(tmp_path):
    result, imports = run_guarded(tmp_path, "import PySide6.QtCore", watch="qt", command=("-c",))
    assert result.returncode == 0, result.stderr
    assert "PySide6.QtCore" in imports


@pytest.mark.parametrize("command", headless_commands())
def test_help_imports_no_qt(tmp_path, command):
    result, imports = run_guarded(tmp_path, command, "--help", watch="qt")
    assert result.returncode == 0, result.stderr
    assert imports == "", imports


@pytest.mark.skipif(not (DEMO / "config.json").is_file(), reason="the demo model is not bundled")
def test_generate_and_chat_import_no_qt(tmp_path):
    result, imports = run_guarded(tmp_path, "generate", "--prompt", "What is 47 + 58?",
                                  watch="qt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "105"
    assert imports == "", imports
    result, imports = run_guarded(tmp_path, "chat", stdin="What is 12 + 30?\n/quit\n", watch="qt")
    assert result.returncode == 0, result.stderr
    assert "LLaDA: 42" in result.stdout
    assert imports == "", imports
