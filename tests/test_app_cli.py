"""`llada app` as a subprocess: the scripted screenshot, and a kill -9 mid-answer."""

from __future__ import annotations

import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.history.store import DB_NAME, Store
from backend_choice import BACKEND

ROOT = Path(__file__).resolve().parents[1]


def app_env() -> dict:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def paced(env: dict, delay: float, mark: Path) -> dict:
    """`env` for an app whose answers pause `delay` s per step and count their steps in `mark`
    (tests/paced_app)."""
    return dict(env, PYTHONPATH=str(ROOT / "tests" / "paced_app") + os.pathsep + env["PYTHONPATH"],
                LLADA_TEST_STEP_DELAY=str(delay), LLADA_TEST_STEP_MARK=str(mark))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_scripted_screenshot(tiny_checkpoint, tmp_path):
    out = tmp_path / "window.png"
    data = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "app", "--model", str(tiny_checkpoint),
         "--backend", BACKEND, "--device", "cpu", "--prompt", "Hello, who are you?",
         "--screenshot", str(out), "--data-dir", str(data), "--gen-length", "32",
         "--steps", "16", "--block-length", "8", "--colour-mode", "confidence",
         "--mode", "fast", "--threshold", "0.8", "--timeout", "300"],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr
    width, height = png_size(out)
    assert width >= 800 and height >= 500
    # keep a copy where a person can look at it (out/ is git-ignored)
    keep = ROOT / "out"
    keep.mkdir(exist_ok=True)
    (keep / "app-screenshot.png").write_bytes(out.read_bytes())
    store = Store.in_folder(data)
    [conversation] = store.conversations()
    messages = store.messages(conversation.id)
    assert [m.role for m in messages] == ["user", "assistant"]
    # The command line's sampler settings reach the window's settings and the answer.
    assert messages[1].settings["mode"] == "fast" and messages[1].settings["threshold"] == 0.8
    assert messages[1].settings["gen_length"] == 32


def test_screenshot_needs_a_prompt(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "app", "--screenshot", str(tmp_path / "x.png"),
         "--data-dir", str(tmp_path)], cwd=ROOT, env=app_env(), capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 2 and "--screenshot needs --prompt" in result.stderr


def test_bad_settings_are_refused_before_the_window_opens(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "app", "--gen-length", "64", "--block-length", "24",
         "--data-dir", str(tmp_path)], cwd=ROOT, env=app_env(), capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 2 and "does not divide" in result.stderr


def kill_app_mid_answer(checkpoint: Path, data: Path, prompt: str, out: Path) -> None:
    """Start `llada app` answering `prompt` slowly and kill -9 it two steps into the answer,
    once the question is committed."""
    mark = data.parent / "steps-taken"
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "app", "--model", str(checkpoint),
         "--backend", BACKEND, "--device", "cpu", "--prompt", prompt,
         "--screenshot", str(out), "--data-dir", str(data),
         "--gen-length", "32", "--steps", "32", "--block-length", "8"],
        cwd=ROOT, env=paced(app_env(), 0.5, mark), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        committed = False
        while time.monotonic() < deadline and process.poll() is None:
            if (data / DB_NAME).exists():
                db = sqlite3.connect(data / DB_NAME, timeout=5)
                try:
                    committed = db.execute("SELECT COUNT(*) FROM messages WHERE text = ?",
                                           (prompt,)).fetchone()[0] == 1
                except sqlite3.OperationalError:  # the schema is not there yet
                    committed = False
                finally:
                    db.close()
            if committed:
                break
            time.sleep(0.1)
        assert committed, "the user message was never committed"
        while time.monotonic() < deadline and process.poll() is None and not (
                mark.exists() and mark.read_text() not in ("", "1")):
            time.sleep(0.05)  # polling the other process's step count
        assert process.poll() is None, "the app finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()


@pytest.mark.slow
def test_kill_mid_generation_keeps_every_earlier_message(tiny_checkpoint, tmp_path):
    data = tmp_path / "data"
    store = Store.in_folder(data)
    earlier = store.create_conversation("Earlier chat")
    store.add_message(earlier, "user", "An earlier question")
    store.add_message(earlier, "assistant", "An earlier answer", stats={"nfe": 8},
                      prompt_ids=[1, 2, 3], trace=b"LLTR")
    store.close()

    kill_app_mid_answer(tiny_checkpoint, data, "Crash during this answer",
                        tmp_path / "never.png")

    store = Store.in_folder(data)
    assert store.notice is None
    old = store.messages(earlier)
    assert [(m.role, m.text) for m in old] == [("user", "An earlier question"),
                                               ("assistant", "An earlier answer")]
    assert store.trace_blob(old[1].id) == b"LLTR"
    crashed = [c for c in store.conversations() if c.id != earlier]
    assert len(crashed) == 1
    assert [(m.role, m.text) for m in store.messages(crashed[0].id)] == [
        ("user", "Crash during this answer")]
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_python_dash_m_app_is_the_window_command():
    result = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=ROOT, env=app_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--screenshot" in result.stdout
    result = subprocess.run([sys.executable, "-m", "app.cli", "--help"], cwd=ROOT,
                            env=app_env(), capture_output=True, text=True, timeout=120)
    assert " app " in result.stdout


def test_scripted_run_with_a_model_that_fails_to_load(tmp_path):
    out = tmp_path / "failed.png"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "app", "--model", str(tmp_path / "missing-model"),
         "--backend", BACKEND, "--prompt", "Hi", "--screenshot", str(out),
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "missing-model" in result.stderr and "Traceback" not in result.stderr
    assert png_size(out)[0] >= 800   # the window, with its error banner


def test_a_database_from_a_newer_version_is_refused_cleanly(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / DB_NAME)
    db.execute("PRAGMA user_version = 999")
    db.close()
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "app", "--data-dir", str(data)],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "newer version" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_folder_from_the_environment(tmp_path, monkeypatch):
    from app.history.store import ENV_DATA_DIR, default_data_dir

    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(ENV_DATA_DIR)
    assert default_data_dir().name == "LLaDA Desktop"


@pytest.mark.slow
def test_scripted_screenshot_mid_answer_shows_the_message_denoising(tiny_checkpoint, tmp_path):
    from PySide6.QtGui import QImage

    out = tmp_path / "mid.png"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "app", "--model", str(tiny_checkpoint),
         "--backend", BACKEND, "--prompt", "Hello", "--screenshot", str(out),
         "--data-dir", str(tmp_path / "data"), "--gen-length", "32", "--steps", "16",
         "--block-length", "8", "--mode", "exact", "--screenshot-step", "4", "--timeout", "300"],
        cwd=ROOT, env=app_env(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr
    image = QImage(str(out))
    masked = sum(1 for y in range(0, image.height(), 2) for x in range(0, image.width(), 2)
                 if image.pixelColor(x, y).name() == "#444444")
    assert masked > 100, "no masked cells painted in the screenshot taken at step 4"
