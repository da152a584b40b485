"""Running `python -m app.cli ...` under tests/torch_guard/sitecustomize.py, which records the
torch and Qt modules the process imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUARD = Path(__file__).resolve().parent / "torch_guard"


def run_guarded(tmp_path: Path, *args: str, stdin: str | None = None, hide_torch: bool = False,
                watch: str = "torch", command: tuple[str, ...] = ("-m", "app.cli")
                ) -> tuple[subprocess.CompletedProcess, str]:
    """Run `python -m app.cli ARGS` (or `python COMMAND ARGS`) with the guard; returns (result,
    the recorded imports of `watch`: "torch" or "qt")."""
    report = tmp_path / f"{watch}-imports.txt"
    variable = {"torch": "LLADA_TORCH_GUARD", "qt": "LLADA_QT_GUARD"}[watch]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(GUARD), str(ROOT)]),
               HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"),
               LLADA_DESKTOP_DATA=str(tmp_path / "data"), QT_QPA_PLATFORM="offscreen",
               LLADA_LOG_DIR=str(tmp_path / "logs"))
    env[variable] = str(report)
    if hide_torch:
        env["LLADA_HIDE_TORCH"] = "1"
    result = subprocess.run([sys.executable, *command, *args], input=stdin,
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    imports = report.read_text() if report.exists() else ""
    return result, imports
