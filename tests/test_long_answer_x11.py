"""A long answer in the window on a real X server (issue 21).

The crash this guards against (PySide6 6.12.0 on Python 3.11 dropping a reference to None on
every void Qt call: "Fatal Python error: none_dealloc" in the canvas' paintEvent) showed only
where the window really paints for a long time: Qt's xcb platform under an X server, through a
512-step answer. The offscreen platform of the other tests did not abort.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.history.store import Store
from backend_choice import BACKEND

ROOT = Path(__file__).resolve().parents[1]
STEPS = 512


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("xvfb-run") is None,
                    reason="xvfb-run is not installed (Debian/Ubuntu: apt-get install xvfb; "
                           ".ci/run installs it with the libraries Qt's xcb plugin needs)")
def test_a_512_step_answer_on_a_real_x_server(tiny_checkpoint, tmp_path):
    out, data = tmp_path / "window.png", tmp_path / "data"
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", HF_HUB_OFFLINE="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.monotonic()
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24",
         sys.executable, "-m", "app.cli", "app", "--model", str(tiny_checkpoint),
         "--backend", BACKEND, "--device", "cpu", "--prompt", "Tell me a long story.",
         "--gen-length", str(STEPS), "--steps", str(STEPS), "--block-length", str(STEPS),
         "--mode", "exact", "--screenshot", str(out), "--data-dir", str(data),
         "--timeout", "500"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=560)
    seconds = time.monotonic() - started
    assert "could not load the qt platform plugin" not in result.stderr.lower(), result.stderr
    assert "Fatal Python error" not in result.stderr, result.stderr[-4000:]
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-4000:]}"
    assert out.stat().st_size > 0
    keep = ROOT / "out"
    keep.mkdir(exist_ok=True)
    (keep / "long-answer-x11.png").write_bytes(out.read_bytes())
    store = Store.in_folder(data)
    [conversation] = store.conversations()
    answer = store.messages(conversation.id)[-1]
    assert answer.role == "assistant" and answer.stats["nfe"] == STEPS, answer.stats
    print(f"{STEPS}-step answer on xvfb: {seconds:.1f} s")
