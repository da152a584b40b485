"""Every `llada` command turns an OS error into one sentence naming the path, exit 2."""

from __future__ import annotations

import errno

import pytest

from app.cli import describe_os_error
from test_cli import llada

DEMO = "app/resources/llada-demo"


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("target, expected", [
    ("{file}", "cannot use {file}: it is a file, not a folder"),
    ("{file}/inside", "cannot use {file}/inside: not a directory"),
])
def test_make_tiny_into_a_file(a_file, target, expected):
    line = one_error_line(llada("make-tiny", target.format(file=a_file)))
    assert line == "llada make-tiny: error: " + expected.format(file=a_file)


def test_convert_into_a_file(a_file):
    pytest.importorskip("mlx.core")
    line = one_error_line(llada("convert", DEMO, f"{a_file}/out", "--bits", "8"))
    assert line == f"llada convert: error: cannot use {a_file}/out: not a directory"
    line = one_error_line(llada("convert", DEMO, str(a_file), "--bits", "8"))
    assert str(a_file) in line


def test_download_into_a_file_fails_before_the_network(a_file):
    line = one_error_line(llada("download", "GSAI-ML/LLaDA-8B-Instruct", "--cache-dir", str(a_file),
                                "--endpoint", "http://127.0.0.1:9"))
    assert line == f"llada download: error: cannot use {a_file}: it is a file, not a folder"


def test_sentences_for_what_root_cannot_provoke(tmp_path):
    denied = PermissionError(errno.EACCES, "Permission denied", "/Volumes/Models/llada")
    assert describe_os_error(denied) == "cannot use /Volumes/Models/llada: permission denied"
    read_only = OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out")
    assert describe_os_error(read_only) == "cannot use /mnt/ro/out: read-only file system"
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))
    assert describe_os_error(full).endswith(": no space left on device")
